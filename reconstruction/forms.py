from django import forms
from django.utils.translation import gettext_lazy as _


class ScanJobForm(forms.Form):
    title = forms.CharField(label=_("What are you scanning?"), max_length=200)
    known_dimension_mm = forms.DecimalField(
        label=_("Its longest side in mm (optional)"), required=False, min_value=1, max_value=5000,
        decimal_places=2, help_text=_("Measure the object's longest side; the model is scaled to it."),
    )

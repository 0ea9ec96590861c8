from django import forms
from django.utils.translation import gettext_lazy as _

from reconstruction.choices import ScaleMethod


class ScanJobForm(forms.Form):
    """A new scan: what it is and how the mesh gets its true size."""

    SCALE_CHOICES = [
        (ScaleMethod.DIMENSION, _("Enter the longest side")),
        (ScaleMethod.MARKERS, _("Use the marker sheet")),
    ]

    title = forms.CharField(label=_("What are you scanning?"), max_length=200)
    scale_method = forms.ChoiceField(
        label=_("How should the model get its true size?"), choices=SCALE_CHOICES, required=False,
        initial=ScaleMethod.DIMENSION, widget=forms.RadioSelect,
    )
    known_dimension_mm = forms.DecimalField(
        label=_("Its longest side in mm"), required=False, min_value=1, max_value=5000, decimal_places=2,
        help_text=_("Measure the object's longest side; the model is scaled to it. With the marker sheet it is "
                    "optional and only used when the markers cannot be found."),
    )

    def clean_scale_method(self) -> str:
        # A radio group always sends a value; a form posted without one means the default.
        return self.cleaned_data.get("scale_method") or ScaleMethod.DIMENSION

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("scale_method") == ScaleMethod.DIMENSION and cleaned.get("known_dimension_mm") is None \
                and "known_dimension_mm" not in self.errors:
            self.add_error("known_dimension_mm", _(
                "Enter the object's longest side in mm, or choose the marker sheet to scale the scan."))
        return cleaned

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from inventory.models import Location


class _OnceForm(forms.Form):
    """Carries a key made when the form is shown, so a double-submitted form books once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, initial=lambda: f"admin-{uuid.uuid4()}")


class ReceiveForm(_OnceForm):
    grams = forms.DecimalField(label=_("Net filament per spool (g)"), max_digits=9, decimal_places=2,
                               widget=UnfoldAdminDecimalFieldWidget)
    count = forms.IntegerField(label=_("Number of spools"), min_value=1, max_value=50, initial=1,
                               widget=UnfoldAdminDecimalFieldWidget)
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.all(), required=False,
                                      widget=UnfoldAdminSelectWidget)
    lot_number = forms.CharField(label=_("Lot"), max_length=60, required=False, widget=UnfoldAdminTextInputWidget)


class WeighForm(_OnceForm):
    gross_grams = forms.DecimalField(label=_("The scale shows (g)"), max_digits=9, decimal_places=2,
                                     widget=UnfoldAdminDecimalFieldWidget,
                                     help_text=_("Spool and filament together; the empty spool is subtracted."))


class MoveForm(_OnceForm):
    location = forms.ModelChoiceField(label=_("New location"), queryset=Location.objects.all(),
                                      widget=UnfoldAdminSelectWidget)

import uuid

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from fablab.exceptions import ApplicationError
from inventory import selectors, services
from inventory.choices import BOOKED_PRODUCT_KINDS, CONSUMING_KINDS, MovementKind, ProductMovementKind, SalesChannel
from inventory.models import RFID_TAG_MAX_LENGTH, Product, Spool


def _grams_field(label, **kwargs) -> forms.DecimalField:
    return forms.DecimalField(label=label, max_digits=9, decimal_places=2, widget=UnfoldAdminDecimalFieldWidget,
                              **kwargs)


def _reason_field(**kwargs) -> forms.CharField:
    return forms.CharField(label=_("Reason"), max_length=255, widget=UnfoldAdminTextInputWidget, **kwargs)


def _location_field(label=_("Location"), **kwargs) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(label=label, queryset=selectors.location_list(), widget=UnfoldAdminSelectWidget,
                                  **kwargs)


class _OnceForm(forms.Form):
    """Carries a key made when the form is shown, so a double-submitted form books once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, initial=lambda: f"admin-{uuid.uuid4()}")


def _clean_rfid_tag(value) -> str:
    try:
        return services.clean_rfid_tag(value)
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from None


def _rfid_tag_field() -> forms.CharField:
    # Room for a UUID written with dashes; what is stored is the hex digits alone (services.clean_rfid_tag).
    return forms.CharField(label=_("RFID tag"), max_length=RFID_TAG_MAX_LENGTH + 32, required=False,
                           widget=UnfoldAdminTextInputWidget,
                           help_text=_("The id a printer reads from the spool's tag (a Bambu spool's tray UUID); "
                                       "a printer slot that reports it is fed from this spool."))


class ReceiveForm(_OnceForm):
    grams = _grams_field(_("Net filament per spool (g)"))
    count = forms.IntegerField(label=_("Number of spools"), min_value=1, max_value=50, initial=1,
                               widget=UnfoldAdminDecimalFieldWidget)
    location = _location_field(required=False)
    lot_number = forms.CharField(label=_("Lot"), max_length=60, required=False, widget=UnfoldAdminTextInputWidget)
    rfid_tag = _rfid_tag_field()

    def clean_rfid_tag(self) -> str:
        return _clean_rfid_tag(self.cleaned_data.get("rfid_tag"))

    def clean(self):
        data = super().clean()
        if data.get("rfid_tag") and (data.get("count") or 1) > 1:
            self.add_error("rfid_tag", _("A tag names one spool: receive the tagged spool on its own."))
        return data


class SpoolForm(forms.ModelForm):
    """A spool's editable fields on its page (its stock changes only through the actions)."""

    rfid_tag = _rfid_tag_field()

    class Meta:
        model = Spool
        fields = ["lot_number", "rfid_tag"]

    def clean_rfid_tag(self) -> str:
        tag = _clean_rfid_tag(self.cleaned_data.get("rfid_tag"))
        other = selectors.spool_list().filter(rfid_tag=tag).exclude(pk=self.instance.pk).first() if tag else None
        if other is not None:
            raise forms.ValidationError(_("Spool %(code)s in stock already has this RFID tag.") % {"code": other.code})
        return tag


class WeighForm(_OnceForm):
    gross_grams = _grams_field(_("The scale shows (g)"),
                               help_text=_("Spool and filament together; the empty spool is subtracted."))


class MoveForm(_OnceForm):
    location = _location_field(_("New location"))


class UseForm(_OnceForm):
    grams = _grams_field(_("Filament taken off (g)"))
    kind = forms.ChoiceField(label=_("Kind"), widget=UnfoldAdminSelectWidget, initial=MovementKind.USED,
                             choices=[(kind.value, kind.label) for kind in MovementKind if kind in CONSUMING_KINDS])
    reason = _reason_field(required=False, help_text=_("E.g. the print job or what failed."))


class AdjustForm(_OnceForm):
    remaining_grams = _grams_field(_("Counted filament left (g)"),
                                   help_text=_("Filament only, without the spool; the difference is booked."))
    reason = _reason_field(help_text=_("Why the stock is corrected, e.g. stocktaking."))


class ProductStockForm(_OnceForm):
    location = _location_field()
    kind = forms.ChoiceField(label=_("Kind"), widget=UnfoldAdminSelectWidget,
                             choices=[(kind, ProductMovementKind(kind).label) for kind in BOOKED_PRODUCT_KINDS])
    quantity = forms.IntegerField(label=_("Units"), widget=UnfoldAdminIntegerFieldWidget,
                                  help_text=_("For 'Adjusted': the units counted at the location."))
    reason = _reason_field(required=False)


class SaleForm(_OnceForm):
    location = _location_field()
    quantity = forms.IntegerField(label=_("Units sold"), widget=UnfoldAdminIntegerFieldWidget)
    unit_price = forms.DecimalField(label=_("Unit price"), max_digits=10, decimal_places=2,
                                    widget=UnfoldAdminDecimalFieldWidget)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="EUR", widget=UnfoldAdminTextInputWidget)
    channel = forms.ChoiceField(label=_("Channel"), choices=SalesChannel.choices, widget=UnfoldAdminSelectWidget)
    sold_on = forms.DateField(label=_("Date"), initial=timezone.localdate,
                              widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))


class SaleReturnForm(_OnceForm):
    quantity = forms.IntegerField(label=_("Units returned"), min_value=1, widget=UnfoldAdminIntegerFieldWidget)
    location = _location_field(required=False, help_text=_("Empty: where the sale took them from."))
    returned_on = forms.DateField(label=_("Date"), initial=timezone.localdate,
                                  widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))


class SaleRowForm(forms.Form):
    """One sale on the page for several sales; a row left empty is skipped."""

    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.order_by("sku"),
                                     widget=UnfoldAdminSelectWidget)
    quantity = forms.IntegerField(label=_("Units"), widget=UnfoldAdminIntegerFieldWidget)
    unit_price = forms.DecimalField(label=_("Unit price"), max_digits=10, decimal_places=2,
                                    widget=UnfoldAdminDecimalFieldWidget)
    channel = forms.ChoiceField(label=_("Channel"), choices=SalesChannel.choices, widget=UnfoldAdminSelectWidget)
    sold_on = forms.DateField(label=_("Date"), widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))
    location = _location_field(required=False)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False,
                                widget=UnfoldAdminTextInputWidget)


SaleRowFormSet = forms.formset_factory(SaleRowForm, extra=8, max_num=100, validate_max=True)


class SaleBatchForm(_OnceForm):
    """Carries the page's key: row n of the batch is recorded under `<key>/<n>`."""

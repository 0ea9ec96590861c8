"""Sales to and from CSV or Excel files (django-import-export), every imported row through the sale services.

Columns: date, sku, channel, quantity, unit_price, currency, reference, location, return_of, idempotency_key.
A row with a negative quantity is a return of the sale whose id is in `return_of`. Without an
`idempotency_key` a row gets one made from its content (and how often the same content came before it in
the file), so importing the same file twice records its sales once; an exported file carries each sale's
key, so it too can be imported again without recording anything twice.

The import never saves a model itself: each row calls `services.sale_record` or `services.sale_return`. A
refused row is reported with its message, and when any row is refused the whole file is rolled back.
"""

import datetime
import hashlib
from collections import Counter
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources

from fablab.exceptions import ApplicationError
from inventory import selectors, services
from inventory.choices import SourceType
from inventory.models import Location, Product, Sale

COLUMNS = ("date", "sku", "channel", "quantity", "unit_price", "currency", "reference", "location", "return_of",
           "idempotency_key")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")


def _text(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # a spreadsheet's number cell
        value = int(value)
    return str(value).strip()


def _day(value) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value or "").strip()
    for pattern in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValidationError({"date": _("Write the date as YYYY-MM-DD or DD.MM.YYYY, not %(value)r.")
                                   % {"value": text}})


def _whole(value: str, column: str) -> int:
    try:
        number = Decimal(value.replace(",", ".")) if value else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise ValidationError({column: _("A whole number, not %(value)r.") % {"value": value}})
    return int(number)


class SaleResource(resources.ModelResource):
    date = fields.Field(attribute="sold_on", column_name="date")
    sku = fields.Field(column_name="sku")
    channel = fields.Field(attribute="channel", column_name="channel")
    quantity = fields.Field(attribute="quantity", column_name="quantity")
    unit_price = fields.Field(attribute="unit_price", column_name="unit_price")
    currency = fields.Field(attribute="currency", column_name="currency")
    reference = fields.Field(attribute="reference", column_name="reference")
    location = fields.Field(column_name="location")
    return_of = fields.Field(attribute="return_of_id", column_name="return_of")
    idempotency_key = fields.Field(column_name="idempotency_key")

    class Meta:
        model = Sale
        fields = COLUMNS
        export_order = COLUMNS
        force_init_instance = True  # every row is a new sale or return; none updates a recorded one
        use_transactions = True
        skip_diff = True

    def __init__(self, *, by=None, **kwargs):
        super().__init__(**kwargs)
        self.by = by
        self._seen: Counter = Counter()

    # --- export ---------------------------------------------------------------------------------

    def get_queryset(self):
        return selectors.sale_list()

    def dehydrate_sku(self, sale: Sale) -> str:
        return sale.product.sku

    def dehydrate_location(self, sale: Sale) -> str:
        return sale.movement.location.name

    def dehydrate_idempotency_key(self, sale: Sale) -> str:
        return sale.movement.idempotency_key

    # --- import ---------------------------------------------------------------------------------

    def import_data(self, dataset, *args, **kwargs):
        kwargs["rollback_on_validation_errors"] = True  # a file is recorded whole or not at all
        self._seen.clear()
        return super().import_data(dataset, *args, **kwargs)

    def import_instance(self, instance: Sale, row: dict, **kwargs) -> None:
        """Read the row into the service's arguments (kept on the instance until it is 'saved')."""
        missing = [c for c in ("date", "sku", "quantity") if not _text(row, c)]
        if missing:
            raise ValidationError({c: _("This column needs a value.") for c in missing})
        quantity = _whole(_text(row, "quantity"), "quantity")
        sku = _text(row, "sku")
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise ValidationError({"sku": _("No product with SKU %(sku)s.") % {"sku": sku}})
        location = None
        if _text(row, "location"):
            location = Location.objects.filter(name=_text(row, "location")).first()
            if location is None:
                raise ValidationError({"location": _("No location named %(name)s.") % {"name": _text(row, "location")}})
        day = _day(row.get("date"))
        content = "|".join(_text(row, c) for c in COLUMNS if c != "idempotency_key")
        self._seen[content] += 1
        key = _text(row, "idempotency_key") or "import:" + hashlib.sha256(
            f"{content}|{self._seen[content]}".encode()).hexdigest()[:40]
        if quantity < 0:
            if not _text(row, "return_of"):
                raise ValidationError({"return_of": _("A negative quantity is a return: name the sale it returns.")})
            original = Sale.objects.filter(pk=_whole(_text(row, "return_of"), "return_of"), product=product).first()
            if original is None:
                raise ValidationError({"return_of": _("No sale %(id)s of %(sku)s.")
                                                    % {"id": _text(row, "return_of"), "sku": sku}})
            instance._service = ("return", {"sale": original, "quantity": -quantity, "location": location,
                                            "returned_on": day, "idempotency_key": key})
        else:
            if _text(row, "return_of"):
                raise ValidationError({"quantity": _("A return has a negative quantity.")})
            instance._service = ("sale", {
                "product": product, "quantity": quantity, "unit_price": _text(row, "unit_price"), "sold_on": day,
                "channel": _text(row, "channel").lower(), "currency": _text(row, "currency") or "EUR",
                "reference": _text(row, "reference"), "location": location, "idempotency_key": key})

    def save_instance(self, instance: Sale, is_create: bool, row: dict, **kwargs) -> None:
        what, arguments = instance._service
        try:
            if what == "return":
                saved = services.sale_return(**arguments, source_type=SourceType.IMPORT, by=self.by)
            else:
                saved = services.sale_record(**arguments, source_type=SourceType.IMPORT, by=self.by)
        except ApplicationError as exc:
            raise ValidationError(str(exc.message)) from None
        for field in Sale._meta.concrete_fields:
            setattr(instance, field.attname, getattr(saved, field.attname))
        instance._state.adding = False

"""The inventory's part of the books an accountant gets: material used per month, and sales with net and VAT.

Each function reads the ledgers for a period of days (in the lab's time zone, both ends included) and returns a
`fablab.exports.Table` whose totals rows are sums of its own rows, one totals row per currency:

- material: the consuming rows of the spool ledger (used by a print, used by a failed print, waste), grams
  per filament per month, each row's cost at its filament's price per kg (the price now: the ledger keeps
  no price). Grams are shown to the milligram and each row's cost to the cent; the totals add up the rows.
- sales: one row per sale or return, its gross amount (units × unit price, prices are gross), the net
  amount (gross ÷ (1 + VAT rate), half-up to cents) and the VAT (gross − net), at PRODUCTION_VAT_PERCENT
  (a sale does not store its rate).
"""

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Max, Min, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab import exports
from fablab.exports import AMOUNT, DATE, GRAMS, INTEGER, MONTH, PERCENT, Column, Table
from inventory.choices import CONSUMING_KINDS, MovementKind
from inventory.models import Filament, Movement, Sale

CENT = Decimal("0.01")
MILLIGRAM = Decimal("0.001")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- material used per month ---------------------------------------------------------------------


def consumption_movements(*, start: date, end: date) -> QuerySet[Movement]:
    """The spool ledger rows that took filament off spools (print, failed print, waste) in the period."""
    begin, after = exports.period_bounds(start, end)
    return Movement.objects.filter(kind__in=CONSUMING_KINDS, created_at__gte=begin, created_at__lt=after)


def material_table(*, start: date, end: date, movements: QuerySet[Movement] | None = None) -> Table:
    """Grams and cost of filament used per month and filament; `movements` narrows the ledger rows further
    (the admin's filtered or selected rows), the period always applies."""
    rows_qs = consumption_movements(start=start, end=end)
    if movements is not None:
        rows_qs = rows_qs.filter(pk__in=movements.values("pk"))
    grouped = (rows_qs.annotate(month=TruncMonth("created_at", tzinfo=timezone.get_current_timezone()))
               .values("month", "spool__filament_id", "kind").annotate(delta=Sum("delta_grams"))
               .order_by())
    used: dict[tuple[date, int], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for item in grouped:
        month = item["month"].date() if hasattr(item["month"], "date") else item["month"]
        used[(month, item["spool__filament_id"])][item["kind"]] += -Decimal(str(item["delta"]))
    filaments = Filament.objects.in_bulk({filament_id for _month, filament_id in used})
    rows = []
    for (month, filament_id), kinds in used.items():
        filament = filaments[filament_id]
        printed = kinds[MovementKind.USED].quantize(MILLIGRAM, rounding=ROUND_HALF_UP)
        failed = kinds[MovementKind.FAILED_PRINT].quantize(MILLIGRAM, rounding=ROUND_HALF_UP)
        waste = kinds[MovementKind.WASTE].quantize(MILLIGRAM, rounding=ROUND_HALF_UP)
        grams = printed + failed + waste
        rows.append({"month": month, "material": filament.material, "filament": str(filament),
                     "printed_g": printed, "failed_g": failed, "waste_g": waste, "grams": grams,
                     "cost_per_kg": filament.cost_per_kg, "cost": _cents(grams * filament.cost_per_kg / 1000),
                     "currency": filament.currency})
    rows.sort(key=lambda row: (row["month"], row["material"], row["filament"]))
    columns = [
        Column("month", _("Month"), MONTH),
        Column("material", _("Material")),
        Column("filament", _("Filament")),
        Column("printed_g", _("Printed (g)"), GRAMS),
        Column("failed_g", _("Failed prints (g)"), GRAMS),
        Column("waste_g", _("Waste (g)"), GRAMS),
        Column("grams", _("Used (g)"), GRAMS),
        Column("cost_per_kg", _("Price per kg"), AMOUNT),
        Column("cost", _("Cost"), AMOUNT),
        Column("currency", _("Currency")),
    ]
    totals = exports.totals_by_currency(rows, currency=settings.PRODUCTION_CURRENCY, label_key="material",
                                        sum_keys=("printed_g", "failed_g", "waste_g", "grams", "cost"))
    return Table(name=f"material-{start.isoformat()}-{end.isoformat()}", columns=columns, rows=rows,
                 totals=totals)


# --- sales ---------------------------------------------------------------------------------------


def net_of(gross: Decimal, vat_percent: Decimal) -> Decimal:
    """The net amount of a gross amount at `vat_percent`, half-up to cents."""
    return _cents(gross * 100 / (100 + vat_percent))


def sales_table(*, start: date, end: date, sales: QuerySet[Sale] | None = None) -> Table:
    """Every sale and return of the period (by its date), oldest first, with gross, net and VAT; `sales`
    narrows the rows further (the admin's filtered or selected rows)."""
    exports.period_check(start, end)
    vat = Decimal(settings.PRODUCTION_VAT_PERCENT)
    qs = Sale.objects.filter(sold_on__gte=start, sold_on__lte=end)
    if sales is not None:
        qs = qs.filter(pk__in=sales.values("pk"))
    rows = []
    for sale in qs.select_related("product").order_by("sold_on", "id"):
        gross = sale.quantity * sale.unit_price
        net = net_of(gross, vat)
        rows.append({"date": sale.sold_on, "sale": sale.pk, "return_of": sale.return_of_id or "",
                     "reference": sale.reference, "sku": sale.product.sku, "product": sale.product.name,
                     "channel": sale.get_channel_display(), "quantity": sale.quantity,
                     "unit_price": sale.unit_price, "net": net, "vat_percent": vat, "vat": gross - net,
                     "gross": gross, "currency": sale.currency})
    columns = [
        Column("date", _("Date"), DATE),
        Column("sale", _("Sale"), INTEGER),
        Column("return_of", _("Return of sale"), INTEGER),
        Column("reference", _("Reference")),
        Column("sku", _("SKU")),
        Column("product", _("Product")),
        Column("channel", _("Channel")),
        Column("quantity", _("Units"), INTEGER),
        Column("unit_price", _("Unit price (gross)"), AMOUNT),
        Column("net", _("Net"), AMOUNT),
        Column("vat_percent", _("VAT %"), PERCENT),
        Column("vat", _("VAT"), AMOUNT),
        Column("gross", _("Gross"), AMOUNT),
        Column("currency", _("Currency")),
    ]
    totals = exports.totals_by_currency(rows, currency=settings.PRODUCTION_CURRENCY, label_key="reference",
                                        sum_keys=("quantity", "net", "vat", "gross"))
    return Table(name=f"sales-{start.isoformat()}-{end.isoformat()}", columns=columns, rows=rows, totals=totals)


# --- the admin's selected or filtered rows -------------------------------------------------------


def _span(first, last) -> tuple[date, date]:
    if first is None:
        today = timezone.localdate()
        return today, today
    return first, last


def material_table_for(*, movements: QuerySet[Movement]) -> Table:
    """The material book of the admin's ledger rows: the period from the first to the last of them."""
    span = movements.filter(kind__in=CONSUMING_KINDS).aggregate(first=Min("created_at"), last=Max("created_at"))
    first, last = (timezone.localdate(span[key]) if span[key] else None for key in ("first", "last"))
    start, end = _span(first, last)
    return material_table(start=start, end=end, movements=movements)


def sales_table_for(*, sales: QuerySet[Sale]) -> Table:
    """The sales book of the admin's sales: the period from the first to the last of them."""
    span = sales.aggregate(first=Min("sold_on"), last=Max("sold_on"))
    start, end = _span(span["first"], span["last"])
    return sales_table(start=start, end=end, sales=sales)

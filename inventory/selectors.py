"""Every non-trivial read of stock: one selector per list, used by the API, the admin and Spoolman alike."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound
from inventory.choices import CONSUMING_KINDS
from inventory.models import (
    GRAM_DIGITS,
    GRAM_PLACES,
    GRAM_QUANTUM,
    Filament,
    Location,
    Movement,
    Product,
    ProductMovement,
    Sale,
    Spool,
    StockAlert,
    Vendor,
)

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=GRAM_DIGITS + 3, decimal_places=GRAM_PLACES))


def grams_in_stock():
    """Annotation for Filament querysets: grams on the filament's spools that are not archived."""
    return Coalesce(Sum("spools__remaining_grams", filter=Q(spools__archived_at__isnull=True)), ZERO)


def units_in_stock():
    """Annotation for Product querysets: units at all locations."""
    return Coalesce(Sum("stock__quantity"), 0)


def _get(queryset: QuerySet, pk: int, what: str):
    item = queryset.filter(pk=pk).first()
    if item is None:
        raise NotFound(_("No %(what)s with id %(id)s.") % {"what": what, "id": pk})
    return item


def vendor_list() -> QuerySet[Vendor]:
    return Vendor.objects.order_by("name")


def filament_list(*, material: str = "") -> QuerySet[Filament]:
    """Filaments with `stock_g`, the grams in stock."""
    qs = Filament.objects.annotate(stock_g=grams_in_stock()).order_by("brand", "material", "name")
    return qs.filter(material__iexact=material.strip()) if material else qs


def filament_get(*, filament_id: int) -> Filament:
    return _get(filament_list(), filament_id, _("filament"))


def filament_stock_g(*, filament: Filament) -> Decimal:
    return filament_list().filter(pk=filament.pk).values_list("stock_g", flat=True).get()


def filament_list_low() -> QuerySet[Filament]:
    return filament_list().filter(reorder_threshold_g__gt=0, stock_g__lt=F("reorder_threshold_g"))


def spool_list(*, archived: bool | None = False, filament_id: int | None = None, code: str = "") -> QuerySet[Spool]:
    """Spools in stock (`archived=True`: the archived ones; None: all), with `last_used`, the last consumption."""
    last_used = Movement.objects.filter(spool=OuterRef("pk"), kind__in=CONSUMING_KINDS).order_by("-created_at")
    qs = Spool.objects.select_related("filament", "location", "location__parent").annotate(
        last_used=Subquery(last_used.values("created_at")[:1]),
    ).order_by("code")
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    if filament_id is not None:
        qs = qs.filter(filament_id=filament_id)
    if code:
        qs = qs.filter(code__iexact=code.strip())
    return qs


def spool_get(*, spool_id: int) -> Spool:
    return _get(spool_list(archived=None), spool_id, _("spool"))


def spools_by_rfid_tag(*, tags) -> dict[str, Spool]:
    """The spools in stock that carry these RFID tags (as printers report them, upper-case hex), by tag."""
    wanted = {str(tag).strip().upper() for tag in tags if tag and str(tag).strip()}
    if not wanted:
        return {}
    spools = Spool.objects.filter(rfid_tag__in=wanted, archived_at__isnull=True).select_related("filament")
    return {spool.rfid_tag: spool for spool in spools}


def movement_list(*, spool: Spool) -> QuerySet[Movement]:
    """A spool's ledger, newest first."""
    return spool.movements.order_by("-created_at", "-id")


def spool_ledger_total(*, spool: Spool) -> Decimal:
    """What the ledger says the spool holds (the sum of all its movements).

    Quantized to the microgram: every movement is stored to the microgram, and SQLite
    sums decimals in floating point.
    """
    total = spool.movements.aggregate(total=Coalesce(Sum("delta_grams"), ZERO))["total"]
    return Decimal(str(total)).quantize(GRAM_QUANTUM)


def movement_list_for_source(*, source_type: str, source_id: str) -> QuerySet[Movement]:
    """The spool ledger rows one source wrote (a print job: `source_type="print_job"`, `source_id=str(job id)`),
    oldest first."""
    return Movement.objects.filter(source_type=source_type, source_id=str(source_id)).select_related(
        "spool__filament", "created_by").order_by("created_at", "id")


def product_movement_list_for_source(*, source_type: str, source_id: str) -> QuerySet[ProductMovement]:
    """The product ledger rows one source wrote (e.g. the units a print job put on the shelf), oldest first."""
    return ProductMovement.objects.filter(source_type=source_type, source_id=str(source_id)).select_related(
        "product", "location", "created_by").order_by("created_at", "id")


def filament_booked_grams(*, since, source_type: str) -> Decimal:
    """Grams the spool ledger booked off spools for one kind of source since `since`: what was taken minus what
    was credited back (a correction moving a print's grams to another spool counts once)."""
    total = Movement.objects.filter(source_type=source_type, created_at__gte=since).aggregate(
        total=Coalesce(Sum("delta_grams"), ZERO))["total"]
    return -Decimal(str(total)).quantize(Decimal("0.01")) + Decimal("0.00")


def location_list() -> QuerySet[Location]:
    return Location.objects.select_related("parent").order_by("name")


def location_get(*, location_id: int) -> Location:
    return _get(location_list(), location_id, _("location"))


def product_list(*, kind: str = "") -> QuerySet[Product]:
    """Products with `units_in_stock`."""
    qs = Product.objects.annotate(units_in_stock=units_in_stock()).order_by("sku")
    return qs.filter(kind=kind) if kind else qs


def product_get(*, product_id: int) -> Product:
    return _get(product_list(), product_id, _("product"))


def product_units(*, product: Product) -> int:
    return product_list().filter(pk=product.pk).values_list("units_in_stock", flat=True).get()


def product_get_by_sku(*, sku: str) -> Product:
    product = product_list().filter(sku=(sku or "").strip()).first()
    if product is None:
        raise NotFound(_("No product with SKU %(sku)s.") % {"sku": sku})
    return product


# --- Sales ---------------------------------------------------------------------------------


def sale_list(*, product_id: int | None = None, sku: str = "", channel: str = "", since: date | None = None,
              until: date | None = None, reference: str = "", returns: bool | None = None) -> QuerySet[Sale]:
    """Sales and returns, newest first; each filter narrows the list (`returns`: True only returns, False none)."""
    qs = Sale.objects.select_related("product", "movement__location").order_by("-sold_on", "-id")
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    if sku:
        qs = qs.filter(product__sku=sku.strip())
    if channel:
        qs = qs.filter(channel=channel)
    if since is not None:
        qs = qs.filter(sold_on__gte=since)
    if until is not None:
        qs = qs.filter(sold_on__lte=until)
    if reference:
        qs = qs.filter(reference=reference.strip())
    if returns is not None:
        qs = qs.filter(return_of__isnull=not returns)
    return qs


def sale_get(*, sale_id: int) -> Sale:
    return _get(sale_list(), sale_id, _("sale"))


VELOCITY_WEEKS = (4, 12, 52)
TREND_WEEKS = 4
CHART_WEEKS = 12


@dataclass
class Velocity:
    """How fast a product sells, returns netted out. Weeks end on `today`: week 0 is the last seven days.

    `weekly`: net units per week over the last 52 weeks, oldest first. `units[n]`: net units over the last n
    weeks, `per_week[n]` the mean per week. `trend_percent`: the last 4 weeks against the 4 before (None
    when nothing sold in the 4 before). `slope`: the least-squares slope of the last 12 weeks, units per
    week per week. `weeks_of_cover`: units in stock / units per week over 12 weeks (None when none sold).
    """

    product: Product
    units_in_stock: int
    weekly: list[int] = field(default_factory=list)

    def units(self, weeks: int) -> int:
        return sum(self.weekly[-weeks:])

    def per_week(self, weeks: int) -> Decimal:
        return (Decimal(self.units(weeks)) / weeks).quantize(Decimal("0.01"))

    @property
    def units_4(self) -> int:
        return self.units(4)

    @property
    def units_12(self) -> int:
        return self.units(12)

    @property
    def units_52(self) -> int:
        return self.units(52)

    @property
    def per_week_4(self) -> Decimal:
        return self.per_week(4)

    @property
    def per_week_12(self) -> Decimal:
        return self.per_week(12)

    @property
    def per_week_52(self) -> Decimal:
        return self.per_week(52)

    @property
    def trend_percent(self) -> Decimal | None:
        recent = self.units(TREND_WEEKS)
        before = sum(self.weekly[-2 * TREND_WEEKS:-TREND_WEEKS])
        if before <= 0:
            return None
        return (Decimal(recent - before) * 100 / before).quantize(Decimal("0.1"))

    @property
    def slope(self) -> Decimal:
        return least_squares_slope(self.weekly[-CHART_WEEKS:])

    @property
    def trend(self) -> str:
        """up, down or flat: the sign of the slope over 12 weeks, flat within ±0.05 units per week per week."""
        slope = self.slope
        return "up" if slope > Decimal("0.05") else "down" if slope < Decimal("-0.05") else "flat"

    @property
    def weeks_of_cover(self) -> Decimal | None:
        rate = self.per_week(12)
        return None if rate <= 0 else (Decimal(self.units_in_stock) / rate).quantize(Decimal("0.1"))


def least_squares_slope(values: list) -> Decimal:
    """The slope of the least-squares line through (0, v0), (1, v1), ...; 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return Decimal("0")
    mean_x = Decimal(n - 1) / 2
    mean_y = Decimal(sum(values)) / n
    numerator = sum((Decimal(x) - mean_x) * (Decimal(y) - mean_y) for x, y in enumerate(values))
    denominator = sum((Decimal(x) - mean_x) ** 2 for x in range(n))
    return (numerator / denominator).quantize(Decimal("0.01"))


def sales_velocity(*, today: date | None = None, weeks: int = 52) -> list[Velocity]:
    """Velocity of every product that sold in the last `weeks` weeks or has units in stock, best sellers of the
    last 4 weeks first."""
    today = today or timezone.localdate()
    first_day = today - timedelta(days=7 * weeks - 1)
    rows = (Sale.objects.filter(sold_on__gte=first_day, sold_on__lte=today)
            .values("product_id", "sold_on").annotate(units=Sum("quantity")))
    weekly: dict[int, list[int]] = {}
    for row in rows:
        index = weeks - 1 - (today - row["sold_on"]).days // 7
        weekly.setdefault(row["product_id"], [0] * weeks)[index] += row["units"]
    products = product_list().select_related("variant").filter(Q(pk__in=weekly) | Q(stock__quantity__gt=0)) \
        .distinct()
    result = [Velocity(product=p, units_in_stock=p.units_in_stock, weekly=weekly.get(p.pk, [0] * weeks))
              for p in products]
    result.sort(key=lambda v: (-v.units_4, -v.units_12, v.product.sku))
    return result


def sales_top_sellers(*, weeks: int = 4, limit: int = 5, today: date | None = None) -> list[Velocity]:
    """The products that sold most units over the last `weeks` weeks (net of returns), at most `limit`."""
    rows = [v for v in sales_velocity(today=today) if v.units(weeks) > 0]
    rows.sort(key=lambda v: (-v.units(weeks), v.product.sku))
    return rows[:limit]


def sales_slow_movers(*, limit: int = 10, today: date | None = None) -> list[Velocity]:
    """Products in stock that sell slowest over 12 weeks (none sold first), most units in stock first."""
    rows = [v for v in sales_velocity(today=today) if v.units_in_stock > 0]
    rows.sort(key=lambda v: (v.per_week(12), -v.units_in_stock, v.product.sku))
    return rows[:limit]


def sales_week_units(*, today: date | None = None) -> tuple[int, int]:
    """Net units sold in this calendar week (Monday to today) and in the whole week before."""
    today = today or timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    last_monday = monday - timedelta(days=7)
    totals = Sale.objects.filter(sold_on__gte=last_monday, sold_on__lte=today).aggregate(
        this=Coalesce(Sum("quantity", filter=Q(sold_on__gte=monday)), 0),
        last=Coalesce(Sum("quantity", filter=Q(sold_on__lt=monday)), 0),
    )
    return totals["this"], totals["last"]


def sales_chart(*, velocities: list[Velocity], today: date | None = None, series: int = 5) -> dict:
    """Chart.js data: units per week over the last 12 weeks for the first `series` products given."""
    today = today or timezone.localdate()
    labels = [(today - timedelta(days=7 * (CHART_WEEKS - 1 - i))).strftime("%d.%m.") for i in range(CHART_WEEKS)]
    colours = ["#0d9488", "#2563eb", "#d97706", "#db2777", "#7c3aed"]
    return {
        "labels": labels,
        "datasets": [
            {"label": v.product.sku, "data": v.weekly[-CHART_WEEKS:], "borderColor": colours[i % len(colours)],
             "backgroundColor": colours[i % len(colours)]}
            for i, v in enumerate(velocities[:series])
        ],
    }


def inventory_kpis() -> list[dict]:
    week_ago = timezone.now() - timedelta(days=7)
    stock_value = sum(
        (grams * cost / 1000 for grams, cost in spool_list().values_list("remaining_grams",
                                                                         "filament__cost_per_kg")),
        Decimal("0"),
    )
    used = Movement.objects.filter(kind__in=CONSUMING_KINDS, created_at__gte=week_ago).aggregate(
        total=Coalesce(Sum("delta_grams"), ZERO))["total"]
    this_week, last_week = sales_week_units()
    top = sales_top_sellers(weeks=4, limit=5)
    return [
        {"label": _("Stock value"), "value": f"{stock_value:.2f}"},
        {"label": _("Filaments below reorder level"), "value": filament_list_low().count()},
        {"label": _("Open stock alerts"), "value": StockAlert.objects.filter(cleared_at__isnull=True).count()},
        {"label": _("Grams used in 7 days"), "value": f"{-used:.0f}"},
        {"label": _("Active spools"), "value": spool_list().count()},
        {"label": _("Units sold this week"), "value": this_week,
         "note": _("last week: %(n)s") % {"n": last_week}},
        {"label": _("Top seller, units in 4 weeks"), "value": top[0].units_4 if top else 0,
         "note": ", ".join(f"{v.product.sku} ({v.units_4})" for v in top) or _("no sales yet")},
        *sales_kpis(),
    ]


def sales_week_revenue(*, today: date | None = None) -> dict[str, tuple[Decimal, Decimal]]:
    """Gross revenue (returns netted out) of this calendar week (Monday to today) and of the whole week before,
    per currency: {currency: (this week, last week)}."""
    today = today or timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    rows = (Sale.objects.filter(sold_on__gte=monday - timedelta(days=7), sold_on__lte=today)
            .values_list("currency", "sold_on", "quantity", "unit_price"))
    revenue: dict[str, list[Decimal]] = {}
    for currency, sold_on, quantity, unit_price in rows:
        revenue.setdefault(currency, [Decimal("0"), Decimal("0")])[0 if sold_on >= monday else 1] += \
            quantity * unit_price
    return {currency: (this, last) for currency, (this, last) in revenue.items()}


def sales_kpis(*, today: date | None = None) -> list[dict]:
    """This week against last week: units, and gross revenue per currency (the lab's currency when nothing sold);
    the top sellers' units over 4 weeks, one figure each."""
    last_week = sales_week_units(today=today)[1]
    revenue = sales_week_revenue(today=today) or {settings.PRODUCTION_CURRENCY: (Decimal("0"), Decimal("0"))}
    figures = [{"label": _("Units sold last week"), "value": last_week}]
    for currency, (this, last) in sorted(revenue.items()):
        figures += [
            {"label": _("Revenue this week (%(currency)s)") % {"currency": currency}, "value": float(this)},
            {"label": _("Revenue last week (%(currency)s)") % {"currency": currency}, "value": float(last)},
        ]
    for rank, velocity in enumerate(sales_top_sellers(weeks=4, limit=5, today=today), start=1):
        figures.append({"label": _("Top seller %(rank)s: %(sku)s, units in 4 weeks")
                        % {"rank": rank, "sku": velocity.product.sku}, "value": velocity.units_4})
    return figures

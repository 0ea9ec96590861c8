"""Every non-trivial read of stock: one selector per list, used by the API, the admin and Spoolman alike."""

from datetime import timedelta
from decimal import Decimal

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


def inventory_kpis() -> list[dict]:
    week_ago = timezone.now() - timedelta(days=7)
    stock_value = sum(
        (grams * cost / 1000 for grams, cost in spool_list().values_list("remaining_grams",
                                                                         "filament__cost_per_kg")),
        Decimal("0"),
    )
    used = Movement.objects.filter(kind__in=CONSUMING_KINDS, created_at__gte=week_ago).aggregate(
        total=Coalesce(Sum("delta_grams"), ZERO))["total"]
    return [
        {"label": _("Stock value"), "value": f"{stock_value:.2f}"},
        {"label": _("Filaments below reorder level"), "value": filament_list_low().count()},
        {"label": _("Open stock alerts"), "value": StockAlert.objects.filter(cleared_at__isnull=True).count()},
        {"label": _("Grams used in 7 days"), "value": f"{-used:.0f}"},
        {"label": _("Active spools"), "value": spool_list().count()},
    ]

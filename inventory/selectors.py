"""Every non-trivial read of stock."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.choices import CONSUMING_KINDS
from inventory.models import Filament, Movement, Spool, StockAlert

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=2))


def filament_list_with_stock() -> QuerySet[Filament]:
    return Filament.objects.annotate(
        stock_g=Coalesce(Sum("spools__remaining_grams", filter=Q(spools__archived_at__isnull=True)), ZERO),
    )


def filament_list_low() -> QuerySet[Filament]:
    return filament_list_with_stock().filter(reorder_threshold_g__gt=0, stock_g__lt=F("reorder_threshold_g"))


def spool_list_active() -> QuerySet[Spool]:
    return Spool.objects.filter(archived_at__isnull=True).select_related("filament", "location")


def spool_ledger_total(*, spool: Spool) -> Decimal:
    """What the ledger says the spool holds (the sum of all its movements).

    Quantized to cents: every movement has two decimals, and SQLite sums decimals
    in floating point.
    """
    total = spool.movements.aggregate(total=Coalesce(Sum("delta_grams"), ZERO))["total"]
    return Decimal(str(total)).quantize(Decimal("0.01"))


def inventory_kpis() -> list[dict]:
    week_ago = timezone.now() - timedelta(days=7)
    stock_value = sum(
        (grams * cost / 1000 for grams, cost in spool_list_active().values_list("remaining_grams",
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
        {"label": _("Active spools"), "value": spool_list_active().count()},
    ]

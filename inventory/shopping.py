"""The shopping list: what to buy, from whom, how much, and what it costs.

For each filament and bought-in product: average daily use over the last
INVENTORY_USAGE_WINDOW_DAYS (grams used by prints, failed prints and waste; units
sold), times (lead time + INVENTORY_SAFETY_DAYS), plus the reorder level, is the
stock to have; when the stock is below that, the difference is bought, in whole
spools for filament and whole units for products.
"""

import csv
import io
import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from inventory import selectors
from inventory.choices import CONSUMING_KINDS, ProductKind
from inventory.models import Movement, Sale


@dataclass
class ShoppingRow:
    supplier: str
    item: str
    kind: str  # "filament" or "product"
    reference: str  # colour for filament, SKU for products
    in_stock: Decimal
    unit: str
    daily_use: Decimal
    lead_time_days: int
    to_buy: int  # spools or units
    to_buy_amount: Decimal  # grams or units
    estimated_cost: Decimal
    currency: str
    purchase_url: str


def _round(value: Decimal, places: str = "0.01") -> Decimal:
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def shopping_list(*, now=None, window_days: int | None = None, safety_days: int | None = None) -> list[ShoppingRow]:
    now = now or timezone.now()
    window = window_days or settings.INVENTORY_USAGE_WINDOW_DAYS
    safety = settings.INVENTORY_SAFETY_DAYS if safety_days is None else safety_days
    since = now - timedelta(days=window)
    rows = []

    used = dict(
        Movement.objects.filter(kind__in=CONSUMING_KINDS, created_at__gte=since, created_at__lte=now)
        .values_list("spool__filament").annotate(total=Sum("delta_grams")).values_list("spool__filament", "total")
    )
    for filament in selectors.filament_list():
        stock = _round(Decimal(str(filament.stock_g)))
        daily = _round(-Decimal(str(used.get(filament.pk) or 0)) / window, "0.001")
        target = daily * (filament.lead_time_days + safety) + filament.reorder_threshold_g
        if stock >= target or target <= 0:
            continue
        spools = math.ceil((target - stock) / filament.net_weight_g)
        grams = filament.net_weight_g * spools
        rows.append(ShoppingRow(
            supplier=filament.supplier or "—", item=str(filament), kind="filament", reference=filament.colour_hex,
            in_stock=stock, unit="g", daily_use=daily, lead_time_days=filament.lead_time_days, to_buy=spools,
            to_buy_amount=_round(grams), estimated_cost=_round(grams / 1000 * filament.cost_per_kg),
            currency=filament.currency, purchase_url=filament.purchase_url,
        ))

    sold = dict(
        Sale.objects.filter(sold_on__gt=(now - timedelta(days=window)).date(), sold_on__lte=now.date())
        .values_list("product").annotate(total=Sum("quantity")).values_list("product", "total")
    )
    for product in selectors.product_list(kind=ProductKind.BOUGHT):
        stock = Decimal(product.units_in_stock)
        daily = _round(Decimal(sold.get(product.pk) or 0) / window, "0.001")
        target = daily * (product.lead_time_days + safety) + product.reorder_threshold_units
        if stock >= target or target <= 0:
            continue
        count = math.ceil(target - stock)
        rows.append(ShoppingRow(
            supplier=product.supplier or "—", item=product.name, kind="product", reference=product.sku,
            in_stock=stock, unit="units", daily_use=daily, lead_time_days=product.lead_time_days, to_buy=count,
            to_buy_amount=Decimal(count), estimated_cost=_round(product.unit_cost * count),
            currency=product.currency, purchase_url=product.purchase_url,
        ))
    return sorted(rows, key=lambda r: (r.supplier.lower(), r.kind, r.item.lower()))


def grouped(rows: list[ShoppingRow]) -> list[tuple[str, list[ShoppingRow], dict[str, Decimal]]]:
    """(supplier, rows, total cost per currency), suppliers in order."""
    groups: dict[str, list[ShoppingRow]] = {}
    for row in rows:
        groups.setdefault(row.supplier, []).append(row)
    result = []
    for supplier, items in groups.items():
        totals: dict[str, Decimal] = {}
        for row in items:
            totals[row.currency] = totals.get(row.currency, Decimal("0")) + row.estimated_cost
        result.append((supplier, items, totals))
    return result


HEADER = ["supplier", "item", "kind", "colour or SKU", "in stock", "unit", "daily use", "lead time (days)",
          "to buy (spools or units)", "amount", "estimated cost", "currency", "purchase link"]


def _cells(row: ShoppingRow) -> list:
    return [row.supplier, row.item, row.kind, row.reference, row.in_stock, row.unit, row.daily_use,
            row.lead_time_days, row.to_buy, row.to_buy_amount, row.estimated_cost, row.currency, row.purchase_url]


def to_csv(rows: list[ShoppingRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(_cells(row))
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8


def to_xlsx(rows: list[ShoppingRow]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Shopping list"
    sheet.append(HEADER)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in _cells(row)])
    for column, width in zip("ABCDEFGHIJKLM", (22, 36, 10, 14, 10, 7, 10, 10, 12, 10, 12, 9, 40), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

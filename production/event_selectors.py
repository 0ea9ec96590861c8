"""Reads of market events: the list, readiness, results after closing, and the recommendations.

Readiness of a product: units in stock plus units still to come from print jobs of its catalog variant that
have not ended (queued, assigned, sent or printing; copies left × units per plate), against its target.

Results of a closed event, per product: sold = taken − returned, sell-through = sold / taken, revenue = sold ×
the unit price of its sale (with VAT), margin = revenue without VAT − sold × the unit cost the product had when
the event was closed. The event's margin is the products' margins less the stall fee.

Recommendations (`market_event_recommendations`), for an event E lasting d_E days with themes T:

    for each past event e (done, before E, sharing a theme with E), and each product p it took:
        demand(p, e) = sold(p, e) × d_E / d_e            (scaled to E's length)
                       × 1.25 when sold(p, e) ≥ 90 % of taken(p, e)   (it nearly sold out: demand was higher)
    history(p)  = mean of demand(p, e) over those past events that took p
    velocity(p) = units of p sold per week over the last 4 weeks, all channels, returns netted
                  (inventory.selectors.sales_velocity)
    recommended(p) = ceil(history(p) + velocity(p) × d_E / 7)

The products recommended are those the matching past events took; with no such event, the best sellers of
the last 4 weeks, on velocity alone. A product whose recommendation comes to 0 is left out.
"""

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound
from inventory import selectors as inventory_selectors
from inventory.models import Product
from production import costs
from production.choices import ON_PRINTER_STATUSES, WAITING_STATUSES, MarketEventStatus
from production.models import MAX_EVENT_UNITS, EventProduct, MarketEvent, PrintJob

SOLD_OUT_SHARE = Decimal("0.9")
SOLD_OUT_UPLIFT = Decimal("1.25")
VELOCITY_WEEKS = 4
TOP_SELLERS = 10
# Jobs that will still add units: waiting, or on a printer and not ended.
OPEN_JOB_STATUSES = WAITING_STATUSES | ON_PRINTER_STATUSES


def units_per_plate() -> int:
    from production.services import UNITS_PER_PLATE

    return UNITS_PER_PLATE


def market_event_list(*, status: str = "", upcoming: bool | None = None, today: date | None = None
                      ) -> QuerySet[MarketEvent]:
    """Events, the latest first; `upcoming`: True only those not over and not done, False only the others."""
    qs = MarketEvent.objects.prefetch_related("products__product", "checklist").order_by("-starts_on", "-id")
    if status:
        qs = qs.filter(status=status)
    if upcoming is not None:
        ahead = Q(ends_on__gte=today or timezone.localdate()) & ~Q(status=MarketEventStatus.DONE)
        qs = qs.filter(ahead) if upcoming else qs.exclude(ahead)
    return qs


def market_event_get(*, event_id: int) -> MarketEvent:
    event = market_event_list().filter(pk=event_id).first()
    if event is None:
        raise NotFound(_("No market event with id %(id)s.") % {"id": event_id})
    return event


def market_event_next(*, today: date | None = None) -> MarketEvent | None:
    """The next event that is not over and not done: the one starting first."""
    today = today or timezone.localdate()
    return (MarketEvent.objects.filter(ends_on__gte=today).exclude(status=MarketEventStatus.DONE)
            .order_by("starts_on", "id").first())


def queued_units(*, variant_ids) -> dict[int, int]:
    """{variant id: units still to come from its print jobs that have not ended}."""
    rows = (PrintJob.objects.filter(version__variant_id__in=list(variant_ids), status__in=OPEN_JOB_STATUSES)
            .values("version__variant_id").annotate(plates=Sum(F("copies") - F("copies_done"))))
    per_plate = units_per_plate()
    return {row["version__variant_id"]: max(0, row["plates"] or 0) * per_plate for row in rows}


def stock_units(*, product_ids) -> dict[int, int]:
    return dict(inventory_selectors.product_list().filter(pk__in=list(product_ids))
                .values_list("pk", "units_in_stock"))


@dataclass
class ProductReadiness:
    line: EventProduct
    target: int
    stock: int
    queued: int

    @property
    def covered(self) -> int:
        return self.stock + self.queued

    @property
    def shortfall(self) -> int:
        return max(0, self.target - self.covered)

    @property
    def ready(self) -> bool:
        return self.stock >= self.target

    @property
    def covered_by_queue(self) -> bool:
        return self.shortfall == 0


@dataclass
class Readiness:
    event: MarketEvent
    products: list[ProductReadiness] = field(default_factory=list)
    checklist_done: int = 0
    checklist_total: int = 0

    @property
    def checklist_share(self) -> Decimal | None:
        if not self.checklist_total:
            return None
        return (Decimal(self.checklist_done) / self.checklist_total).quantize(Decimal("0.01"))

    @property
    def shortfall(self) -> int:
        return sum(row.shortfall for row in self.products)

    def as_dict(self, *, today: date | None = None) -> dict:
        today = today or timezone.localdate()
        return {
            "event_id": self.event.pk,
            "name": self.event.name,
            "starts_on": self.event.starts_on,
            "ends_on": self.event.ends_on,
            "place": self.event.place,
            "status": self.event.status,
            "days_left": (self.event.starts_on - today).days,
            "products": [{"product_id": row.line.product_id, "sku": row.line.product.sku,
                          "name": row.line.product.name, "target": row.target, "stock": row.stock,
                          "queued": row.queued, "shortfall": row.shortfall, "ready": row.ready}
                         for row in self.products],
            "products_total": len(self.products),
            "products_ready": sum(1 for row in self.products if row.ready),
            "products_covered": sum(1 for row in self.products if row.covered_by_queue),
            "units_target": sum(row.target for row in self.products),
            "units_in_stock": sum(min(row.stock, row.target) for row in self.products),
            "shortfall": self.shortfall,
            "checklist_done": self.checklist_done,
            "checklist_total": self.checklist_total,
            "checklist_share": self.checklist_share,
        }


def market_event_readiness(*, event: MarketEvent) -> Readiness:
    """Per product: units in stock and still to come from the queue against the target; the checklist's share
    done."""
    lines = list(EventProduct.objects.filter(event=event).select_related("product").order_by("product__sku"))
    stock = stock_units(product_ids=[line.product_id for line in lines])
    queued = queued_units(variant_ids={line.product.variant_id for line in lines if line.product.variant_id})
    products = [ProductReadiness(line=line, target=line.target_units, stock=stock.get(line.product_id, 0),
                                 queued=queued.get(line.product.variant_id, 0) if line.product.variant_id else 0)
                for line in lines]
    checklist = event.checklist.all() if event.pk else []
    total = len(checklist)
    done = sum(1 for item in checklist if item.done)
    return Readiness(event=event, products=products, checklist_done=done, checklist_total=total)


def market_event_next_readiness(*, today: date | None = None) -> dict:
    """The readiness of the next event (market_event_next) as a dict for the dashboard; {} when none is planned.

    Keys: event_id, name, starts_on, ends_on, place, status, days_left, products (per product: product_id, sku,
    name, target, stock, queued, shortfall, ready), products_total, products_ready (stock reaches the target),
    products_covered (stock and queue reach it), units_target, units_in_stock (up to each target), shortfall,
    checklist_done, checklist_total, checklist_share (0..1, None without a checklist).
    """
    event = market_event_next(today=today)
    if event is None:
        return {}
    return market_event_readiness(event=event).as_dict(today=today)


# --- results ----------------------------------------------------------------------------------------------------


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class ProductResult:
    line: EventProduct
    taken: int
    returned: int
    sold: int
    unit_price: Decimal | None
    currency: str
    revenue: Decimal | None
    revenue_net: Decimal | None
    cost: Decimal | None
    margin: Decimal | None

    @property
    def sell_through(self) -> Decimal | None:
        """sold / taken, 0..1 (None when nothing was taken)."""
        return (Decimal(self.sold) / self.taken).quantize(Decimal("0.01")) if self.taken else None


@dataclass
class EventResults:
    event: MarketEvent
    products: list[ProductResult]
    revenue: Decimal
    revenue_net: Decimal
    cost: Decimal
    margin: Decimal
    margin_after_fee: Decimal

    @property
    def sold(self) -> int:
        return sum(row.sold for row in self.products)

    @property
    def taken(self) -> int:
        return sum(row.taken for row in self.products)

    @property
    def sell_through(self) -> Decimal | None:
        return (Decimal(self.sold) / self.taken).quantize(Decimal("0.01")) if self.taken else None


def _product_result(line: EventProduct, vat: Decimal) -> ProductResult:
    taken = line.taken_units or 0
    returned = line.returned_units or 0
    sold = taken - returned
    sale = line.sale
    price = sale.unit_price if sale is not None else line.product.sale_price
    currency = sale.currency if sale is not None else line.product.currency
    unit_cost = line.unit_cost if line.unit_cost is not None else line.product.unit_cost
    if price is None:
        return ProductResult(line=line, taken=taken, returned=returned, sold=sold, unit_price=None,
                             currency=currency, revenue=None, revenue_net=None, cost=None, margin=None)
    revenue = _cents(price * sold)
    revenue_net = _cents(costs.net_price(price, vat) * sold)
    cost = _cents(unit_cost * sold)
    return ProductResult(line=line, taken=taken, returned=returned, sold=sold, unit_price=price, currency=currency,
                         revenue=revenue, revenue_net=revenue_net, cost=cost, margin=revenue_net - cost)


def market_event_results(*, event: MarketEvent) -> EventResults:
    """Sold, sell-through, revenue (with VAT) and margin (without VAT, less the unit cost) per product and for the
    event (less the stall fee). Before the event is closed, the figures use the counts entered so far and the
    products' current prices."""
    vat = Decimal(str(settings.PRODUCTION_VAT_PERCENT))
    lines = EventProduct.objects.filter(event=event).select_related("product", "sale").order_by("product__sku")
    rows = [_product_result(line, vat) for line in lines]
    known = [row for row in rows if row.revenue is not None]
    revenue = sum((row.revenue for row in known), Decimal("0"))
    revenue_net = sum((row.revenue_net for row in known), Decimal("0"))
    cost = sum((row.cost for row in known), Decimal("0"))
    margin = revenue_net - cost
    return EventResults(event=event, products=rows, revenue=revenue, revenue_net=revenue_net, cost=cost,
                        margin=margin, margin_after_fee=margin - event.stall_fee)


# --- recommendations --------------------------------------------------------------------------------------------


@dataclass
class Recommendation:
    product: Product
    units: int
    history_units: Decimal  # history(p): mean scaled demand at matching past events
    velocity_units: Decimal  # velocity(p) × d_E / 7
    events: int  # how many matching past events took the product


def matching_past_events(*, event: MarketEvent) -> list[MarketEvent]:
    """Closed events before `event` that share at least one of its themes."""
    themes = set(event.themes or [])
    if not themes:
        return []
    candidates = MarketEvent.objects.filter(status=MarketEventStatus.DONE, starts_on__lt=event.starts_on)
    if event.pk:
        candidates = candidates.exclude(pk=event.pk)
    return [past for past in candidates.order_by("-starts_on") if themes & set(past.themes or [])]


def _demand(line: EventProduct, past: MarketEvent, days: int) -> Decimal | None:
    taken, sold = line.taken_units, line.sold_units
    if not taken or sold is None:
        return None
    demand = Decimal(sold) * days / past.days
    if sold >= taken * SOLD_OUT_SHARE:
        demand *= SOLD_OUT_UPLIFT
    return demand


def market_event_recommendations(*, event: MarketEvent, today: date | None = None) -> list[Recommendation]:
    """Products and units for `event` from past events sharing a theme and this season's velocity (the formula
    is in this module's docstring); the most units first."""
    days = event.days
    past_events = matching_past_events(event=event)
    demands: dict[int, list[Decimal]] = {}
    for past in past_events:
        for line in EventProduct.objects.filter(event=past):
            demand = _demand(line, past, days)
            if demand is not None:
                demands.setdefault(line.product_id, []).append(demand)
    velocities = {row.product.pk: row for row in inventory_selectors.sales_velocity(today=today)}
    if demands:
        product_ids = list(demands)
    else:
        product_ids = [row.product.pk for row in inventory_selectors.sales_top_sellers(
            weeks=VELOCITY_WEEKS, limit=TOP_SELLERS, today=today)]
    products = {product.pk: product for product in Product.objects.filter(pk__in=product_ids)}
    result = []
    for product_id in product_ids:
        history = sum(demands.get(product_id, []), Decimal("0")) / max(1, len(demands.get(product_id, [])))
        velocity = velocities.get(product_id)
        per_week = max(Decimal("0"), velocity.per_week(VELOCITY_WEEKS)) if velocity is not None else Decimal("0")
        from_velocity = per_week * days / 7
        units = min(math.ceil(history + from_velocity), MAX_EVENT_UNITS)
        if units <= 0 or product_id not in products:
            continue
        result.append(Recommendation(product=products[product_id], units=units,
                                     history_units=history.quantize(Decimal("0.01")),
                                     velocity_units=from_velocity.quantize(Decimal("0.01")),
                                     events=len(demands.get(product_id, []))))
    result.sort(key=lambda row: (-row.units, row.product.sku))
    return result


# --- one event as the API shows it ------------------------------------------------------------------------------


def market_event_summary(*, event: MarketEvent, today: date | None = None) -> dict:
    """The event with its products (target, counts, stock, queue, shortfall, results), checklist, readiness and,
    once closed, results: what GET /production/events shows. Kept on the event for the schema's resolvers."""
    cached = getattr(event, "_summary", None)
    if cached is not None:
        return cached
    readiness = market_event_readiness(event=event)
    results = market_event_results(event=event)
    by_line = {row.line.pk: row for row in results.products}
    products = []
    for row in readiness.products:
        line, result = row.line, by_line.get(row.line.pk)
        products.append({
            "product_id": line.product_id, "sku": line.product.sku, "name": line.product.name,
            "target_units": line.target_units, "recommended_units": line.recommended_units,
            "taken_units": line.taken_units, "returned_units": line.returned_units, "sold_units": line.sold_units,
            "in_stock": row.stock, "queued_units": row.queued, "shortfall": row.shortfall, "ready": row.ready,
            "unit_price": result.unit_price if result else None,
            "sell_through": result.sell_through if result and line.taken_units else None,
            "revenue": result.revenue if result and line.sold_units is not None else None,
            "margin": result.margin if result and line.sold_units is not None else None,
        })
    summary = readiness.as_dict(today=today)
    event._summary = {
        "products": products,
        "checklist": [{"id": item.pk, "text": item.text, "done": item.done,
                       "assignee": item.assignee.get_username() if item.assignee_id else None}
                      for item in event.checklist.select_related("assignee").order_by("position", "id")],
        "readiness": {name: summary[name] for name in (
            "days_left", "products_total", "products_ready", "products_covered", "units_target", "units_in_stock",
            "shortfall", "checklist_done", "checklist_total", "checklist_share")},
        "results": None if event.status != MarketEventStatus.DONE else {
            "taken": results.taken, "sold": results.sold, "sell_through": results.sell_through,
            "revenue": results.revenue, "margin": results.margin, "stall_fee": event.stall_fee,
            "margin_after_fee": results.margin_after_fee},
    }
    return event._summary

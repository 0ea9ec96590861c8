"""Restock recommendations: how many units of each selling product to make, from its forecast demand.

For each product with sales in the last RESTOCK_HISTORY_WEEKS weeks (net of returns):

- its weekly net units (inventory.forecasting) give the forecast demand per week `per_week` over the
  lead time and the review period, and `sigma`, the spread of one week's demand around the forecast;
- lead time L (weeks): how long until new units are on the shelf. The caller knows it (for printed
  products production: the wait in the print queue plus the print's hours); without one, the product's
  own `lead_time_days`;
- reorder point = per_week × L + z × sigma × √L, z the standard normal quantile of the service level
  (RESTOCK_SERVICE_LEVEL_PERCENT, 95 %: z ≈ 1.645): the stock that covers the lead time in that share of
  cases;
- order-up-to level = reorder point + per_week × R, R the review period (RESTOCK_REVIEW_WEEKS): what is
  made has to last until the next look;
- position = units in stock + units already on their way (queued for printing; the caller says how many);
- the recommendation is the whole units from the position up to the order-up-to level (0 when the position
  reaches it). Staff look at the page once per review period, so each look tops the stock up; a position
  below the reorder point means the lead time is already at risk (`below_reorder_point`).

Inventory knows nothing of printers or the print queue: production passes the lead time and the units
queued as functions of the product (production.restock).
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from scipy.stats import norm

from inventory import forecasting
from inventory.choices import ForecastMethod
from inventory.models import Product, Sale
from inventory.selectors import product_list

DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class Recommendation:
    product: Product
    forecast: forecasting.Forecast
    units_in_stock: int
    units_queued: int
    lead_time_weeks: float
    review_weeks: float
    service_level: float
    reorder_point: float
    order_up_to: float
    quantity: int

    @property
    def method(self) -> str:
        return self.forecast.method

    @property
    def method_label(self) -> str:
        return ForecastMethod(self.method).label

    @property
    def per_week(self) -> float:
        return self.forecast.mean

    @property
    def sigma(self) -> float:
        return self.forecast.sigma

    @property
    def position(self) -> int:
        return self.units_in_stock + self.units_queued

    @property
    def below_reorder_point(self) -> bool:
        return self.position <= self.reorder_point and self.per_week > 0


def service_z(service_level: float) -> float:
    """The standard normal quantile of a service level given as a share (0.95 → 1.645)."""
    if not 0.5 <= service_level < 1:
        raise ValueError("The service level is a share from 0.5 to below 1.")
    return float(norm.ppf(service_level))


def reorder_point(*, per_week: float, sigma: float, lead_time_weeks: float, z: float) -> float:
    """Demand over the lead time plus safety stock z·σ·√L (σ of one week's demand, L in weeks)."""
    lead = max(0.0, float(lead_time_weeks))
    return per_week * lead + z * sigma * math.sqrt(lead)


def order_quantity(*, order_up_to: float, position: int) -> int:
    """Whole units from the position up to the order-up-to level; 0 when the position reaches it."""
    # A tolerance so that floating-point noise (28.000000000001) does not round up a whole unit.
    return max(0, math.ceil(order_up_to - position - 1e-9))


def sales_weekly(*, product_ids: Iterable[int] | None = None, today: date | None = None,
                 weeks: int | None = None) -> dict[int, list[int]]:
    """Net units sold per week over the last `weeks` weeks (returns netted out), oldest first, per product that
    had any sale or return in them. Weeks end on `today`: the last entry is the last seven days."""
    today = today or timezone.localdate()
    weeks = weeks or settings.RESTOCK_HISTORY_WEEKS
    first_day = today - timedelta(days=DAYS_PER_WEEK * weeks - 1)
    rows = Sale.objects.filter(sold_on__gte=first_day, sold_on__lte=today)
    if product_ids is not None:
        rows = rows.filter(product_id__in=list(product_ids))
    weekly: dict[int, list[int]] = {}
    for row in rows.values("product_id", "sold_on").annotate(units=Sum("quantity")):
        index = weeks - 1 - (today - row["sold_on"]).days // DAYS_PER_WEEK
        weekly.setdefault(row["product_id"], [0] * weeks)[index] += row["units"]
    return weekly


def _own_lead_time(product: Product) -> float:
    return product.lead_time_days / DAYS_PER_WEEK


def restock_recommendations(*, products: Iterable[Product] | None = None,
                            lead_time_weeks: Callable[[Product], float] | None = None,
                            units_queued: Callable[[Product], int] | None = None, today: date | None = None,
                            service_level_percent: Decimal | float | None = None,
                            review_weeks: Decimal | float | None = None) -> list[Recommendation]:
    """A recommendation for every product that sold in the history window (of `products` when given; of
    every product otherwise), the largest quantity first.

    `lead_time_weeks(product)`: weeks until new units of it are in stock (default: its `lead_time_days`).
    `units_queued(product)`: units of it already on their way (default: none).
    """
    level = float(settings.RESTOCK_SERVICE_LEVEL_PERCENT if service_level_percent is None
                  else service_level_percent) / 100
    review = float(settings.RESTOCK_REVIEW_WEEKS if review_weeks is None else review_weeks)
    if not math.isfinite(review) or review < 0:
        raise ValueError("The review period is a number of weeks, 0 or more.")
    z = service_z(level)
    lead_of = lead_time_weeks or _own_lead_time
    queued_of = units_queued or (lambda product: 0)

    candidates = product_list() if products is None else product_list().filter(
        pk__in=[product.pk for product in products])
    weekly = sales_weekly(product_ids=None if products is None else candidates.values_list("pk", flat=True),
                          today=today)
    result = []
    for product in candidates.filter(pk__in=[pk for pk, units in weekly.items() if sum(units) > 0]) \
            .select_related("variant"):
        lead = max(0.0, float(lead_of(product)))
        forecast = forecasting.forecast(weekly[product.pk], horizon=max(1, math.ceil(lead + review)))
        point = reorder_point(per_week=forecast.mean, sigma=forecast.sigma, lead_time_weeks=lead, z=z)
        up_to = point + forecast.mean * review
        stock, queued = int(product.units_in_stock), int(queued_of(product))
        result.append(Recommendation(
            product=product, forecast=forecast, units_in_stock=stock, units_queued=queued, lead_time_weeks=lead,
            review_weeks=review, service_level=level, reorder_point=point, order_up_to=up_to,
            quantity=order_quantity(order_up_to=up_to, position=stock + queued),
        ))
    result.sort(key=lambda row: (-row.quantity, -row.per_week, row.product.sku))
    return result

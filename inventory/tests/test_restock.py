"""Restock recommendations (inventory.restock): the reorder point's arithmetic and the sales it is read from."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from inventory import restock, services
from inventory.choices import ForecastMethod, LocationKind, ProductKind, ProductMovementKind

TODAY = date(2026, 6, 30)


def test_the_reorder_point_and_quantity_of_a_hand_computed_example():
    z = restock.service_z(0.95)
    assert z == pytest.approx(1.644854, abs=1e-6)
    # 10 units a week ± 4, one week of lead time: 10 + 1.645 × 4 × √1 = 16.58.
    point = restock.reorder_point(per_week=10, sigma=4, lead_time_weeks=1, z=z)
    assert point == pytest.approx(16.5794, abs=1e-4)
    # Four weeks of lead time: 40 + 1.645 × 4 × 2 = 53.16.
    assert restock.reorder_point(per_week=10, sigma=4, lead_time_weeks=4, z=z) == pytest.approx(53.1588, abs=1e-4)
    # Two weeks of review: up to 16.58 + 20 = 36.58; 5 in stock and 3 queued: 28.58, so 29 units.
    assert restock.order_quantity(order_up_to=point + 20, position=8) == 29
    assert restock.order_quantity(order_up_to=36.0, position=16) == 20  # whole units, no rounding noise
    assert restock.order_quantity(order_up_to=point + 20, position=37) == 0  # enough: nothing to make


@pytest.mark.parametrize("level", [0.4, 1.0, 1.5])
def test_a_service_level_outside_the_range_is_refused(level):
    with pytest.raises(ValueError, match="service level"):
        restock.service_z(level)


@pytest.fixture
def shelf(db):
    return services.location_create(name="Shelf", kind=LocationKind.SHELF)


def bought(sku: str, **fields):
    return services.product_create(sku=sku, name=sku, kind=ProductKind.BOUGHT, **fields)


def sell_weekly(product, shelf, units: list[int], *, today: date = TODAY, stock: int = 0):
    """Receive what the sales need plus `stock`, then sell units[i] on the last day of week i (oldest first)."""
    services.product_stock_book(product=product, location=shelf, kind=ProductMovementKind.RECEIVED,
                                quantity=sum(units) + stock, idempotency_key=f"receive-{product.sku}")
    for index, count in enumerate(units):
        if count:
            day = today - timedelta(days=7 * (len(units) - 1 - index))
            services.sale_record(product=product, quantity=count, unit_price=Decimal("5"), sold_on=day,
                                 channel="shop", idempotency_key=f"sale-{product.sku}-{index}")


def test_weekly_sales_net_of_returns_end_today(shelf):
    product = bought("CLIP")
    sell_weekly(product, shelf, [2, 0, 5])
    sale = product.sales.get(quantity=5)
    services.sale_return(sale=sale, quantity=1, idempotency_key="back-1", returned_on=TODAY)
    assert restock.sales_weekly(today=TODAY, weeks=4) == {product.pk: [0, 2, 0, 4]}


def test_recommendations_for_products_that_sold(shelf, settings):
    settings.RESTOCK_SERVICE_LEVEL_PERCENT = Decimal("95")
    settings.RESTOCK_REVIEW_WEEKS = Decimal("2")
    steady = bought("STEADY", lead_time_days=14)
    sell_weekly(steady, shelf, [10] * 20, stock=4)
    bought("NEVER-SOLD")
    rows = restock.restock_recommendations(today=TODAY)
    assert [row.product.sku for row in rows] == ["STEADY"]
    row = rows[0]
    assert row.method == ForecastMethod.SES and row.method_label == "Exponential smoothing"
    assert row.per_week == pytest.approx(10) and row.sigma == pytest.approx(0, abs=1e-6)
    assert row.lead_time_weeks == 2  # the product's own 14 days without a lead time from the caller
    assert row.reorder_point == pytest.approx(20)
    assert row.order_up_to == pytest.approx(40)
    assert row.units_in_stock == 4 and row.units_queued == 0
    assert row.quantity == 36


def test_the_caller_supplies_lead_time_and_units_on_their_way(shelf, settings):
    settings.RESTOCK_REVIEW_WEEKS = Decimal("1")
    product = bought("HOOK")
    sell_weekly(product, shelf, [10] * 20)
    row, = restock.restock_recommendations(today=TODAY, lead_time_weeks=lambda p: 0.5,
                                           units_queued=lambda p: 3)
    assert row.lead_time_weeks == 0.5 and row.units_queued == 3
    assert row.reorder_point == pytest.approx(5)
    assert row.quantity == 12  # up to 5 + 10 = 15, less the 3 on their way
    enough, = restock.restock_recommendations(today=TODAY, lead_time_weeks=lambda p: 0.5,
                                              units_queued=lambda p: 6)
    full, = restock.restock_recommendations(today=TODAY, lead_time_weeks=lambda p: 0.5,
                                            units_queued=lambda p: 15)
    assert full.quantity == 0
    assert enough.quantity == 9 and not enough.below_reorder_point  # 6 on their way: above the 5
    assert row.below_reorder_point


def test_a_higher_service_level_keeps_more_safety_stock(shelf):
    product = bought("WOBBLY")
    sell_weekly(product, shelf, [8, 12] * 10)
    low, = restock.restock_recommendations(today=TODAY, service_level_percent=80, review_weeks=0)
    high, = restock.restock_recommendations(today=TODAY, service_level_percent=99, review_weeks=0)
    assert low.sigma > 0
    assert high.reorder_point > low.reorder_point
    assert high.reorder_point - low.reorder_point == pytest.approx(
        (restock.service_z(0.99) - restock.service_z(0.80)) * low.sigma)


def test_only_the_products_asked_for(shelf):
    first, second = bought("A1"), bought("B1")
    sell_weekly(first, shelf, [3] * 5)
    sell_weekly(second, shelf, [4] * 5)
    assert [row.product.sku for row in restock.restock_recommendations(products=[second], today=TODAY)] == ["B1"]


def test_a_negative_review_period_is_refused(shelf):
    with pytest.raises(ValueError, match="review period"):
        restock.restock_recommendations(today=TODAY, review_weeks=-1)

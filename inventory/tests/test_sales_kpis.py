"""The dashboard's sales figures on known data: this week against last week in units and revenue, top five."""

from datetime import date

import pytest

from inventory import selectors, services
from inventory.tests.factories import key

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 11)  # a Wednesday: this week began on Monday 9 March


def test_this_week_against_last_week_and_the_top_five(settings):
    settings.PRODUCTION_CURRENCY = "EUR"
    shelf = services.location_create(name="Shelf", kind="shelf")

    def product(sku):
        item = services.product_create(sku=sku, name=sku.title(), kind="bought")
        services.product_stock_change(product=item, location=shelf, kind="received", quantity=50,
                                      idempotency_key=key())
        return item

    def sell(item, quantity, price, day):
        return services.sale_record(product=item, quantity=quantity, unit_price=price, sold_on=day, channel="shop",
                                    idempotency_key=key())

    ring, hook = product("RING"), product("HOOK")
    sell(ring, 3, "2.50", date(2026, 3, 10))
    sell(hook, 1, "11.90", date(2026, 3, 9))
    last = sell(ring, 5, "2.50", date(2026, 3, 8))
    services.sale_return(sale=last, quantity=1, returned_on=date(2026, 3, 10), idempotency_key=key())
    for sku in ("P5", "P4", "P3", "P2", "P1"):
        sell(product(sku), 1, "1.00", date(2026, 3, 2))
    sell(ring, 9, "2.50", date(2026, 2, 1))  # more than four weeks ago

    figures = {item["label"]: item["value"] for item in selectors.sales_kpis(today=TODAY)}
    assert figures["Units sold last week"] == 10  # 5 rings and the five P-items
    assert figures["Revenue this week (EUR)"] == 16.9  # 7.50 + 11.90 − 2.50 returned
    assert figures["Revenue last week (EUR)"] == 17.5  # 12.50 + 5 × 1.00
    tops = [(label, value) for label, value in figures.items() if label.startswith("Top seller")]
    assert tops == [("Top seller 1: RING, units in 4 weeks", 7), ("Top seller 2: HOOK, units in 4 weeks", 1),
                    ("Top seller 3: P1, units in 4 weeks", 1), ("Top seller 4: P2, units in 4 weeks", 1),
                    ("Top seller 5: P3, units in 4 weeks", 1)]
    assert all(isinstance(value, int | float) for value in figures.values())


def test_no_sales_show_zero_revenue_in_the_labs_currency(settings):
    settings.PRODUCTION_CURRENCY = "CHF"
    figures = {item["label"]: item["value"] for item in selectors.sales_kpis(today=TODAY)}
    assert figures == {"Units sold last week": 0, "Revenue this week (CHF)": 0.0, "Revenue last week (CHF)": 0.0}

"""Sales and returns through the product ledger, batches of sales, and sales velocity."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from fablab.exceptions import Conflict, InvalidInput
from inventory import selectors, services
from inventory.models import ProductMovement, ProductStock, Sale
from inventory.tests.factories import key

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf():
    return services.location_create(name="Shelf", kind="shelf")


@pytest.fixture
def stall():
    return services.location_create(name="Market box", kind="other")


@pytest.fixture
def rings(shelf):
    product = services.product_create(sku="RING", name="Keyring rings", kind="bought")
    services.product_stock_change(product=product, location=shelf, kind="received", quantity=20,
                                  idempotency_key=key())
    return product


def sell(product, quantity=1, day=None, **kwargs):
    return services.sale_record(product=product, quantity=quantity, unit_price=kwargs.pop("unit_price", "2.50"),
                                sold_on=day or timezone.localdate(), channel=kwargs.pop("channel", "market"),
                                idempotency_key=kwargs.pop("idempotency_key", key("sale")), **kwargs)


def units_at(product, location) -> int:
    return ProductStock.objects.get(product=product, location=location).quantity


def ledger_total(product) -> int:
    return sum(ProductMovement.objects.filter(product=product).values_list("delta_units", flat=True))


class TestRecording:
    def test_a_sale_without_a_location_takes_units_where_most_are(self, rings, shelf, stall):
        services.product_stock_change(product=rings, location=stall, kind="received", quantity=5,
                                      idempotency_key=key())
        sale = sell(rings, 3, reference="ORDER-17", currency="eur")
        assert sale.movement.location == shelf and sale.movement.kind == "sold" and sale.movement.delta_units == -3
        assert (sale.reference, sale.currency, sale.quantity, sale.total) == ("ORDER-17", "EUR", 3, Decimal("7.50"))
        assert units_at(rings, shelf) == 17 and units_at(rings, stall) == 5
        assert selectors.product_units(product=rings) == ledger_total(rings) == 22

    def test_the_same_key_is_the_same_sale(self, rings):
        first = sell(rings, 2, idempotency_key="shop-order-1")
        again = sell(rings, 2, idempotency_key="shop-order-1")
        assert first == again and Sale.objects.count() == 1 and selectors.product_units(product=rings) == 18
        other = services.product_create(sku="HOOK", name="Hooks", kind="bought")
        with pytest.raises(Conflict, match="already used"):
            sell(other, 1, idempotency_key="shop-order-1")

    @pytest.mark.parametrize("args,message", [
        ({"quantity": 21}, "has 20 units"),
        ({"quantity": 0}, "between 1 and"),
        ({"quantity": -3}, "between 1 and"),
        ({"quantity": 10**12}, "between 1 and"),
        ({"quantity": 2.5}, "whole number"),
        ({"unit_price": "-0.01"}, "0 or more"),
        ({"unit_price": "1e9"}, "more than"),
        ({"unit_price": "NaN"}, "0 or more"),
        ({"unit_price": "two"}, "must be a number"),
        ({"channel": "flea"}, "Unknown sales channel"),
        ({"currency": "euro"}, "currency"),
        ({"reference": "A\x00B"}, "Null characters"),
        ({"reference": "x" * 101}, "reference"),
        ({"day": date.today() + timedelta(days=5)}, "future"),
        ({"idempotency_key": ""}, "idempotency key"),
    ])
    def test_bad_sales_change_nothing(self, rings, args, message):
        with pytest.raises(InvalidInput) as refused:
            sell(rings, **{"quantity": 2, **args})
        assert message in str(refused.value.message) + str(refused.value.extra)
        assert not Sale.objects.exists() and selectors.product_units(product=rings) == 20

    def test_nothing_in_stock_cannot_be_sold(self, shelf):
        empty = services.product_create(sku="EMPTY", name="Nothing", kind="bought")
        with pytest.raises(InvalidInput, match="no units in stock"):
            sell(empty, 1)
        assert not Sale.objects.exists()


class TestReturns:
    def test_a_return_is_a_negative_linked_row_through_the_ledger(self, rings, shelf, stall):
        sale = sell(rings, 5, reference="R-1")
        back = services.sale_return(sale=sale, quantity=2, idempotency_key="ret-1")
        assert (back.quantity, back.return_of, back.unit_price, back.reference) == (-2, sale, sale.unit_price, "R-1")
        assert back.movement.kind == "returned" and back.movement.delta_units == 2 and back.movement.location == shelf
        assert services.sale_return(sale=sale, quantity=2, idempotency_key="ret-1") == back  # once per key
        services.sale_return(sale=sale, quantity=1, location=stall, idempotency_key="ret-2")
        assert units_at(rings, shelf) == 17 and units_at(rings, stall) == 1
        assert selectors.product_units(product=rings) == ledger_total(rings) == 18
        assert sum(selectors.sale_list(product_id=rings.pk).values_list("quantity", flat=True)) == 2

    def test_no_more_comes_back_than_was_sold(self, rings):
        sale = sell(rings, 3)
        services.sale_return(sale=sale, quantity=2, idempotency_key=key())
        with pytest.raises(InvalidInput, match="2 came back already"):
            services.sale_return(sale=sale, quantity=2, idempotency_key=key())
        back = Sale.objects.get(quantity=-2)
        with pytest.raises(InvalidInput, match="cannot be returned"):
            services.sale_return(sale=back, quantity=1, idempotency_key=key())
        with pytest.raises(InvalidInput, match="between 1 and"):
            services.sale_return(sale=sale, quantity=-1, idempotency_key=key())
        assert Sale.objects.count() == 2 and selectors.product_units(product=rings) == 19


class TestBatch:
    def test_a_batch_is_recorded_whole(self, rings):
        rows = [{"product": rings, "quantity": 2, "unit_price": "2.50", "sold_on": date(2026, 1, 5),
                 "channel": "market", "idempotency_key": f"batch-{n}"} for n in range(3)]
        sales = services.sale_record_many(rows=rows)
        assert len(sales) == 3 and selectors.product_units(product=rings) == 14

    def test_one_refused_row_writes_nothing_and_names_every_refusal(self, rings):
        good = {"product": rings, "quantity": 2, "unit_price": "2.50", "sold_on": date(2026, 1, 5),
                "channel": "market"}
        rows = [{**good, "idempotency_key": "b-0"}, {**good, "quantity": 19, "idempotency_key": "b-1"},
                {**good, "channel": "moon", "idempotency_key": "b-2"}]
        with pytest.raises(InvalidInput, match="2 of 3 sales were refused") as refused:
            services.sale_record_many(rows=rows)
        assert set(refused.value.extra["rows"]) == {1, 2}
        assert "has 18 units" in refused.value.extra["rows"][1]
        assert not Sale.objects.exists() and selectors.product_units(product=rings) == 20


class TestVelocity:
    TODAY = date(2026, 3, 1)

    @pytest.fixture
    def history(self, rings, shelf):
        """Rings: 1, 2, ... 8 units in the last 8 weeks (week 0 = 8); hooks: 3 units 20 weeks ago; pins: none."""
        services.product_stock_change(product=rings, location=shelf, kind="received", quantity=30,
                                      idempotency_key=key())
        for weeks_ago in range(8):
            sell(rings, 8 - weeks_ago, day=self.TODAY - timedelta(days=7 * weeks_ago + 1))
        hooks = services.product_create(sku="HOOK", name="Hooks", kind="bought")
        services.product_stock_change(product=hooks, location=shelf, kind="received", quantity=10,
                                      idempotency_key=key())
        sold = sell(hooks, 4, day=self.TODAY - timedelta(weeks=20))
        services.sale_return(sale=sold, quantity=1, returned_on=self.TODAY - timedelta(weeks=20),
                             idempotency_key=key())
        pins = services.product_create(sku="PIN", name="Pins", kind="bought")
        services.product_stock_change(product=pins, location=shelf, kind="received", quantity=30,
                                      idempotency_key=key())
        sell(rings, 1, day=self.TODAY - timedelta(weeks=60))  # outside the year
        return rings, hooks, pins

    def test_units_per_window_trend_and_slope(self, history):
        rings, hooks, pins = history
        rows = {v.product.sku: v for v in selectors.sales_velocity(today=self.TODAY)}
        assert list(rows) == ["RING", "HOOK", "PIN"]
        ring = rows["RING"]
        assert ring.weekly[-8:] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert (ring.units_4, ring.units_12, ring.units_52) == (26, 36, 36)
        assert ring.per_week(4) == Decimal("6.50") and ring.per_week(52) == Decimal("0.69")
        assert ring.trend_percent == Decimal("160.0")  # 26 against 10
        # Least squares through 0,0,0,0,1..8 over x = 0..11
        xs, ys = range(12), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        mx, my = sum(xs) / 12, sum(ys) / 12
        expected = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        assert ring.slope == Decimal(str(round(expected, 2))) and ring.trend == "up"
        assert ring.weeks_of_cover == Decimal("4.3")  # 13 in stock at 3.00 per week
        hook = rows["HOOK"]
        assert (hook.units_4, hook.units_52, hook.trend_percent, hook.weeks_of_cover) == (0, 3, None, None)
        assert rows["PIN"].units_52 == 0 and rows["PIN"].trend == "flat"

    def test_top_sellers_and_slow_movers(self, history):
        rings, hooks, pins = history
        assert [v.product for v in selectors.sales_top_sellers(today=self.TODAY)] == [rings]
        assert [v.product for v in selectors.sales_top_sellers(weeks=52, today=self.TODAY)] == [rings, hooks]
        assert [v.product for v in selectors.sales_slow_movers(today=self.TODAY)] == [pins, hooks, rings]

    def test_this_week_against_last_week_on_the_dashboard(self, rings):
        today = timezone.localdate()
        monday = today - timedelta(days=today.weekday())
        sell(rings, 3, day=today)
        sell(rings, 5, day=monday - timedelta(days=1))
        sell(rings, 7, day=monday - timedelta(days=8))  # the week before last
        assert selectors.sales_week_units() == (3, 5)
        kpis = {k["label"]: k for k in selectors.inventory_kpis()}
        assert kpis["Units sold this week"]["value"] == 3 and kpis["Units sold this week"]["note"] == "last week: 5"
        top = kpis["Top seller, units in 4 weeks"]
        assert top["value"] == 15 and top["note"] == "RING (15)"  # all three lie within the last 4 weeks

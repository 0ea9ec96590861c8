import datetime
from decimal import Decimal

import pytest
from django.core import mail

from catalog.tests.factories import VariantFactory
from fablab.exceptions import Conflict, InvalidInput
from inventory import services
from inventory.models import ProductMovement, ProductStock, Sale, StockAlert
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf():
    return services.location_create(name="Shop shelf", kind="shelf")


@pytest.fixture
def keyring():
    return services.product_create(sku="RING-10", name="Keychain rings", kind="bought", reorder_threshold_units=20)


def stock(product) -> int:
    return sum(ProductStock.objects.filter(product=product).values_list("quantity", flat=True))


class TestProducts:
    def test_printed_products_need_a_variant_and_bought_ones_none(self):
        with pytest.raises(InvalidInput, match="catalog variant"):
            services.product_create(sku="P-1", name="Vase", kind="printed")
        with pytest.raises(InvalidInput, match="catalog variant"):
            services.product_create(sku="B-1", name="Hook", kind="bought", variant=VariantFactory())
        assert services.product_create(sku="P-2", name="Vase", kind="printed", variant=VariantFactory()).pk

    def test_a_sale_price_is_gross_and_never_negative(self, keyring):
        assert keyring.sale_price is None
        priced = services.product_update(product=keyring, sale_price=Decimal("2.38"))
        priced.refresh_from_db()
        assert priced.sale_price == Decimal("2.38")
        for bad in (Decimal("-0.01"), Decimal("1e12"), "abc"):
            with pytest.raises(InvalidInput):
                services.product_update(product=keyring, sale_price=bad)
        priced.refresh_from_db()
        assert priced.sale_price == Decimal("2.38")
        assert services.product_update(product=priced, sale_price=None).sale_price is None

    def test_ledger_per_location_with_replays(self, keyring, shelf):
        other = services.location_create(name="Market box", kind="other")
        services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=100,
                                      idempotency_key="po-1")
        services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=100,
                                      idempotency_key="po-1")
        services.product_stock_change(product=keyring, location=other, kind="produced", quantity=5,
                                      idempotency_key=key())
        assert stock(keyring) == 105
        assert stock(keyring) == sum(ProductMovement.objects.filter(product=keyring)
                                     .values_list("delta_units", flat=True))
        services.product_stock_change(product=keyring, location=shelf, kind="adjusted", quantity=0,
                                      idempotency_key=key(), reason="Counted")
        assert stock(keyring) == 5

    @pytest.mark.parametrize("kind", ["sold", "moved_in", "moved_out", "stolen"])
    def test_sales_and_transfers_are_not_booked_by_hand(self, keyring, shelf, kind):
        with pytest.raises(InvalidInput, match="sales are recorded as sales"):
            services.product_stock_book(product=keyring, location=shelf, kind=kind, quantity=1,
                                        idempotency_key=key())
        assert not ProductMovement.objects.exists()

    @pytest.mark.parametrize("quantity", [0, -3, 2.5, "many", True, 10**9])
    def test_bad_quantities(self, keyring, shelf, quantity):
        with pytest.raises(InvalidInput):
            services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=quantity,
                                          idempotency_key=key())
        assert not ProductMovement.objects.exists()

    def test_cannot_sell_what_is_not_there(self, keyring, shelf):
        services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=3,
                                      idempotency_key=key())
        with pytest.raises(InvalidInput, match="has 3 units"):
            services.sale_record(product=keyring, location=shelf, quantity=4, unit_price="1.50",
                                 sold_on=datetime.date(2026, 11, 1), channel="market", idempotency_key=key())
        assert stock(keyring) == 3 and not Sale.objects.exists()

    def test_a_sale_is_recorded_once_and_takes_stock(self, keyring, shelf):
        services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=50,
                                      idempotency_key=key())
        args = {"product": keyring, "location": shelf, "quantity": 4, "unit_price": "1.50",
                "sold_on": datetime.date(2026, 11, 1), "channel": "etsy", "idempotency_key": "etsy-order-81"}
        first = services.sale_record(**args)
        again = services.sale_record(**args)
        assert first == again and Sale.objects.count() == 1
        assert first.unit_price == Decimal("1.50") and stock(keyring) == 46
        with pytest.raises(InvalidInput, match="channel"):
            services.sale_record(**{**args, "channel": "telepathy", "idempotency_key": key()})
        with pytest.raises(Conflict):
            services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=1,
                                          idempotency_key="etsy-order-81")


class TestAlerts:
    @pytest.fixture
    def manager(self, staff_member):
        return staff_member("Manager", email="boss@fablab.example")

    def test_one_alert_and_one_mail_per_crossing(self, manager, django_capture_on_commit_callbacks):
        filament = FilamentFactory(reorder_threshold_g=Decimal("500"))
        s = spool(filament, grams="1000")
        with django_capture_on_commit_callbacks(execute=True):
            services.spool_use(spool=s, grams_used=300, idempotency_key=key())  # 700: above
            services.spool_use(spool=s, grams_used=300, idempotency_key=key())  # 400: crosses
            services.spool_use(spool=s, grams_used=50, idempotency_key=key())   # 350: still below
        assert StockAlert.objects.count() == 1
        assert len(mail.outbox) == 1 and mail.outbox[0].to == ["boss@fablab.example"]
        assert str(filament) in mail.outbox[0].subject
        with django_capture_on_commit_callbacks(execute=True):
            spool(filament, grams="1000")                                        # 1350: cleared
            services.spool_use(spool=s, grams_used=340, idempotency_key=key())  # 1010: above
        alert = StockAlert.objects.get()
        assert alert.cleared_at is not None and alert.notified_at is not None
        with django_capture_on_commit_callbacks(execute=True):
            services.spool_archive(spool=s)                                     # 1000 left: still above
        assert StockAlert.objects.filter(cleared_at__isnull=True).count() == 0
        assert len(mail.outbox) == 1

    def test_products_alert_too(self, manager, keyring, shelf, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            services.product_stock_change(product=keyring, location=shelf, kind="received", quantity=25,
                                          idempotency_key=key())
            services.sale_record(product=keyring, location=shelf, quantity=10, unit_price=1,
                                 sold_on=datetime.date(2026, 11, 2), channel="shop", idempotency_key=key())
        alert = StockAlert.objects.get(product=keyring)
        assert alert.level == 15 and alert.threshold == 20
        assert len(mail.outbox) == 1

    def test_no_threshold_no_alert(self):
        s = spool(FilamentFactory(reorder_threshold_g=0), grams="10")
        services.spool_use(spool=s, grams_used=10, idempotency_key=key())
        assert not StockAlert.objects.exists()

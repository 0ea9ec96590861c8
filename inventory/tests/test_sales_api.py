"""POST/GET /api/v1/sales: the lab's shops record sales once per Idempotency-Key; partners are refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.tests.helpers import assert_problem
from inventory import selectors, services
from inventory.models import ProductMovement, Sale
from inventory.tests.factories import key

pytestmark = pytest.mark.django_db


def post(client, path, payload, idempotency_key=None):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return client.post(path, payload, content_type="application/json", headers=headers)


@pytest.fixture
def shelf():
    return services.location_create(name="Shelf", kind="shelf")


@pytest.fixture
def rings(shelf):
    product = services.product_create(sku="RING", name="Keyring rings", kind="bought")
    services.product_stock_change(product=product, location=shelf, kind="received", quantity=10,
                                  idempotency_key=key())
    return product


def body(**overrides):
    return {"sku": "RING", "channel": "shop", "quantity": 3, "unit_price": "2.50", "currency": "EUR",
            "sold_at": "2026-01-05T18:30:00Z", "reference": "WEB-1001", **overrides}


def test_a_shop_records_a_sale_once_per_key(lab_api, rings, shelf):
    first = post(lab_api, "/api/v1/sales", body(), "web-1001")
    again = post(lab_api, "/api/v1/sales", body(), "web-1001")
    assert first.status_code == again.status_code == 201, first.content
    sale = first.json()
    assert again.json()["id"] == sale["id"] and Sale.objects.count() == 1
    assert (sale["sku"], sale["product_id"], sale["location_id"], sale["quantity"], sale["unit_price"]) == \
        ("RING", rings.pk, shelf.pk, 3, "2.50")
    assert (sale["sold_on"], sale["channel"], sale["reference"], sale["return_of_id"]) == \
        ("2026-01-05", "shop", "WEB-1001", None)
    assert selectors.product_units(product=rings) == 7
    by_id = post(lab_api, "/api/v1/sales", body(sku=None, product_id=rings.pk, sold_at="2026-01-06"), "web-1002")
    assert by_id.status_code == 201 and by_id.json()["sold_on"] == "2026-01-06"
    today = post(lab_api, "/api/v1/sales", body(sold_at=None, quantity=1), "web-1003")
    assert today.json()["sold_on"] == timezone.localdate().isoformat()


def test_a_return_through_the_api(lab_api, rings):
    sale = post(lab_api, "/api/v1/sales", body(), "web-1").json()
    back = post(lab_api, f"/api/v1/sales/{sale['id']}/returns", {"quantity": 2}, "web-1-return")
    assert back.status_code == 201, back.content
    assert (back.json()["quantity"], back.json()["return_of_id"]) == (-2, sale["id"])
    too_many = post(lab_api, f"/api/v1/sales/{sale['id']}/returns", {"quantity": 2}, "web-1-return-2")
    assert_problem(too_many, 422, detail_contains="cannot be returned")
    assert selectors.product_units(product=rings) == 9
    assert_problem(post(lab_api, "/api/v1/sales/999999/returns", {"quantity": 1}, "x"), 404)


@pytest.mark.parametrize("overrides,status,detail", [
    ({"quantity": -1}, 422, "between 1 and"),
    ({"quantity": 0}, 422, "between 1 and"),
    ({"quantity": 10**30}, 422, ""),
    ({"quantity": 11}, 422, "has 10 units"),
    ({"unit_price": "-1"}, 422, "0 or more"),
    ({"unit_price": "1e40"}, 422, ""),
    ({"channel": "flea"}, 422, "channel: Input should be"),
    ({"currency": "euro"}, 422, ""),
    ({"reference": "WEB\x001"}, 422, ""),
    ({"sku": "NOPE"}, 404, "No product with SKU"),
    ({"sku": None, "product_id": 999999}, 404, "No product"),
    ({"sku": None}, 422, "product_id or by sku"),
    ({"product_id": 1}, 422, "product_id or by sku"),
    ({"location_id": 999999}, 404, "No location"),
    ({"sold_at": "2999-01-01"}, 422, "future"),
    ({"sold_at": "yesterday"}, 422, ""),
])
def test_bad_sales_change_nothing(lab_api, rings, overrides, status, detail):
    assert_problem(post(lab_api, "/api/v1/sales", body(**overrides), "bad"), status, detail_contains=detail)
    assert not Sale.objects.exists() and selectors.product_units(product=rings) == 10


def test_the_key_is_required_and_bound_to_its_sale(lab_api, rings):
    assert_problem(post(lab_api, "/api/v1/sales", body()), 422, detail_contains="Idempotency-Key")
    hooks = services.product_create(sku="HOOK", name="Hooks", kind="bought")
    services.product_stock_book(product=hooks, location=selectors.location_list().get(), kind="received",
                                quantity=5, idempotency_key="delivery-7")
    assert_problem(post(lab_api, "/api/v1/sales", body(sku="HOOK"), "delivery-7"), 409, detail_contains="already")
    assert not Sale.objects.exists()


def test_partners_neither_record_nor_read_sales(api, rings):
    assert_problem(post(api, "/api/v1/sales", body(), "p-1"), 403, detail_contains="lab's own API keys")
    services.sale_record(product=rings, quantity=1, unit_price=1, sold_on=timezone.localdate(), channel="shop",
                         idempotency_key=key())
    assert_problem(api.get("/api/v1/sales"), 403)
    assert ProductMovement.objects.filter(kind="sold").count() == 1


def test_list_filters_and_pages(lab_api, rings):
    today = timezone.localdate()
    for n, (channel, days_ago) in enumerate([("shop", 0), ("market", 3), ("market", 10)]):
        services.sale_record(product=rings, quantity=1, unit_price=2, sold_on=today - timedelta(days=days_ago),
                             channel=channel, reference=f"R{n}", idempotency_key=key())
    sale = Sale.objects.get(reference="R0")
    services.sale_return(sale=sale, quantity=1, idempotency_key=key())
    page = lab_api.get("/api/v1/sales?limit=2").json()
    assert (page["count"], len(page["items"]), page["limit"]) == (4, 2, 2)
    assert lab_api.get("/api/v1/sales?channel=market").json()["count"] == 2
    since = (today - timedelta(days=5)).isoformat()
    assert lab_api.get(f"/api/v1/sales?since={since}&returns=false").json()["count"] == 2
    assert [s["quantity"] for s in lab_api.get("/api/v1/sales?returns=true").json()["items"]] == [-1]
    assert lab_api.get("/api/v1/sales?reference=R2&sku=RING").json()["items"][0]["channel"] == "market"
    assert lab_api.get(f"/api/v1/sales/{sale.pk}").json()["reference"] == "R0"
    assert_problem(lab_api.get("/api/v1/sales?channel=moon"), 422)
    assert_problem(lab_api.get("/api/v1/sales?limit=100000"), 422)

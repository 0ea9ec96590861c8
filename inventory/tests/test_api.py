from decimal import Decimal

import pytest
from django.utils import timezone

from fablab.tests.helpers import ApiClient, assert_problem
from inventory import selectors, services
from inventory.models import Movement, ProductMovement, Sale, Spool
from inventory.tests.factories import FilamentFactory, spool

pytestmark = pytest.mark.django_db


def post(client, path, payload, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(path, payload, content_type="application/json", headers=headers)


def test_partners_read_stock(api):
    s = spool(FilamentFactory(colour_hex="#00AE42"), grams="800")
    filaments = api.get("/api/v1/inventory/filaments").json()
    assert Decimal(filaments["items"][0]["stock_g"]) == Decimal("800")
    detail = api.get(f"/api/v1/inventory/spools/{s.pk}").json()
    assert detail["code"] == s.code and detail["filament"]["colour_hex"] == "#00AE42"
    assert api.get(f"/api/v1/inventory/spools?code={s.code.lower()}").json()["count"] == 1
    assert api.get(f"/api/v1/inventory/spools/{s.pk}/movements").json()["items"][0]["kind"] == "received"


def test_partners_cannot_change_stock(api):
    s = spool(grams="800")
    assert_problem(post(api, f"/api/v1/inventory/spools/{s.pk}/use", {"grams": 10}, key="p-1"), 403,
                   detail_contains="lab's own API keys")
    assert Movement.objects.count() == 1


def test_lab_uses_once_per_idempotency_key(lab_api):
    s = spool(grams="800")
    first = post(lab_api, f"/api/v1/inventory/spools/{s.pk}/use", {"grams": "12.5", "source_id": "job-9"}, "job-9")
    again = post(lab_api, f"/api/v1/inventory/spools/{s.pk}/use", {"grams": "12.5", "source_id": "job-9"}, "job-9")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("787.50")


def test_grams_are_written_as_stored_never_rounded(lab_api):
    s = spool(grams="800")
    used = post(lab_api, f"/api/v1/inventory/spools/{s.pk}/use", {"grams": "0.004474"}, "klipper-1")
    assert used.status_code == 201 and used.json()["delta_grams"] == "-0.004474"
    detail = lab_api.get(f"/api/v1/inventory/spools/{s.pk}").json()
    assert (detail["initial_grams"], detail["remaining_grams"]) == ("800.00", "799.995526")


def test_idempotency_key_is_required(lab_api):
    s = spool()
    assert_problem(post(lab_api, f"/api/v1/inventory/spools/{s.pk}/use", {"grams": 1}), 422,
                   detail_contains="Idempotency-Key")


def test_receive_and_weigh(lab_api):
    filament = FilamentFactory(spool_weight_g=Decimal("250"))
    response = post(lab_api, "/api/v1/inventory/spools", {"filament_id": filament.pk, "grams": 1000}, "po-77/1")
    assert response.status_code == 201
    spool_id = response.json()["id"]
    assert post(lab_api, "/api/v1/inventory/spools", {"filament_id": filament.pk, "grams": 1000},
                "po-77/1").json()["id"] == spool_id
    weighed = post(lab_api, f"/api/v1/inventory/spools/{spool_id}/weigh", {"gross_grams": 1200}, "scale-1")
    assert weighed.json()["delta_grams"] == "-50.00"
    assert Spool.objects.get(pk=spool_id).remaining_grams == Decimal("950.00")


@pytest.mark.parametrize("payload,status", [
    ({"grams": -5}, 422), ({"grams": "lots"}, 422), ({"grams": 99999999}, 422),
    ({"grams": 5, "kind": "received"}, 422), ({}, 422),
])
def test_bad_uses_are_refused(lab_api, payload, status):
    s = spool()
    assert_problem(post(lab_api, f"/api/v1/inventory/spools/{s.pk}/use", payload, key="bad"), status)
    assert s.movements.count() == 1


def test_malformed_json_and_unknown_ids(lab_api):
    s = spool()
    response = lab_api.post(f"/api/v1/inventory/spools/{s.pk}/use", "{not json", content_type="application/json",
                            headers={"Idempotency-Key": "x"})
    assert_problem(response, 400, detail_contains="Cannot parse request body")
    assert_problem(post(lab_api, "/api/v1/inventory/spools/999999/use", {"grams": 1}, "y"), 404)
    assert_problem(post(lab_api, "/api/v1/inventory/spools", {"filament_id": 999999, "grams": 5}, "z"), 404)


def test_read_only_lab_key_cannot_write(lab_read_key):
    s = spool()
    assert_problem(post(ApiClient(lab_read_key), f"/api/v1/inventory/spools/{s.pk}/use", {"grams": 1}, "k"), 403)


def test_match_slots(api):
    orange = FilamentFactory(colour_hex="#FF8000")
    spool(orange, grams="300")
    body = post(api, "/api/v1/inventory/match", {"slots": [
        {"material": "PLA", "colour": "#FF8000FF", "grams": 100},
        {"material": "PETG", "colour": "#000000", "grams": 10},
    ]}).json()
    assert body[0]["enough"] is True and body[0]["candidates"][0]["filament"]["id"] == orange.pk
    assert body[0]["candidates"][0]["delta_e"] == 0
    assert body[1]["enough"] is False and body[1]["candidates"] == []


def test_products_with_units(api):
    shelf = services.location_create(name="Shelf", kind="shelf")
    rings = services.product_create(sku="RING", name="Rings", kind="bought", sale_price="0.99")
    services.product_stock_change(product=rings, location=shelf, kind="received", quantity=12, idempotency_key="r")
    item = api.get("/api/v1/inventory/products").json()["items"][0]
    assert (item["sku"], item["units_in_stock"]) == ("RING", 12)
    assert (item["sale_price"], item["currency"]) == ("0.99", "EUR")
    assert "unit_cost" not in item  # what the lab pays stays the lab's


# --- Counted corrections, product units and sales ----------------------------------------


def test_lab_corrects_a_spool_to_a_counted_value_once(lab_api):
    s = spool(grams="1000")
    first = post(lab_api, f"/api/v1/inventory/spools/{s.pk}/adjust",
                 {"remaining_grams": "700", "reason": "stocktaking"}, "count-1")
    again = post(lab_api, f"/api/v1/inventory/spools/{s.pk}/adjust",
                 {"remaining_grams": "700", "reason": "stocktaking"}, "count-1")
    assert first.status_code == again.status_code == 201, first.content
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["kind"], first.json()["delta_grams"], first.json()["source_type"]) == (
        "adjusted", "-300.00", "api")
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("700.00") == selectors.spool_ledger_total(spool=s)


@pytest.mark.parametrize("payload,status,detail", [
    ({"remaining_grams": -1, "reason": "count"}, 422, "must be more than 0 g"),
    ({"remaining_grams": 60000, "reason": "count"}, 422, "more than any spool holds"),
    ({"remaining_grams": 5, "reason": "  "}, 422, "Say why"),
    ({"remaining_grams": 5}, 422, ""),
])
def test_bad_corrections_change_nothing(lab_api, payload, status, detail):
    s = spool(grams="1000")
    assert_problem(post(lab_api, f"/api/v1/inventory/spools/{s.pk}/adjust", payload, "bad-count"), status,
                   detail_contains=detail)
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("1000.00") and s.movements.count() == 1


def test_partners_and_unknown_spools_cannot_be_corrected(api, lab_api):
    s = spool(grams="1000")
    body = {"remaining_grams": 5, "reason": "count"}
    assert_problem(post(api, f"/api/v1/inventory/spools/{s.pk}/adjust", body, "p-1"), 403)
    assert_problem(post(lab_api, "/api/v1/inventory/spools/999999/adjust", body, "p-2"), 404)
    assert_problem(post(lab_api, f"/api/v1/inventory/spools/{s.pk}/adjust", body), 422,
                   detail_contains="Idempotency-Key")
    assert s.movements.count() == 1


@pytest.fixture
def rings():
    return services.product_create(sku="RING", name="Rings", kind="bought")


@pytest.fixture
def shelf():
    return services.location_create(name="Shelf", kind="shelf")


def test_lab_books_product_units_once(lab_api, rings, shelf):
    path = f"/api/v1/inventory/products/{rings.pk}/stock"
    first = post(lab_api, path, {"location_id": shelf.pk, "kind": "received", "quantity": 40, "source_id": "DN-7"},
                 "dn-7")
    again = post(lab_api, path, {"location_id": shelf.pk, "kind": "received", "quantity": 40}, "dn-7")
    assert first.status_code == again.status_code == 201, first.content
    assert first.json()["id"] == again.json()["id"] and first.json()["delta_units"] == 40
    counted = post(lab_api, path, {"location_id": shelf.pk, "kind": "adjusted", "quantity": 38}, "count-2")
    assert counted.json()["delta_units"] == -2
    assert selectors.product_units(product=rings) == 38


@pytest.mark.parametrize("payload,status,detail", [
    ({"kind": "received", "quantity": -3}, 422, "between 1 and"),
    ({"kind": "received", "quantity": 10**9}, 422, "between 1 and"),
    ({"kind": "received", "quantity": "many"}, 422, ""),
    ({"kind": "sold", "quantity": 1}, 422, "'returned' or 'adjusted'"),
    ({"kind": "moved_in", "quantity": 1}, 422, "'returned' or 'adjusted'"),
    ({"kind": "received", "quantity": 1, "location_id": 999999}, 404, "No location"),
])
def test_bad_product_bookings_change_nothing(lab_api, rings, shelf, payload, status, detail):
    body = {"location_id": shelf.pk, **payload}
    assert_problem(post(lab_api, f"/api/v1/inventory/products/{rings.pk}/stock", body, "bad"), status,
                   detail_contains=detail)
    assert not ProductMovement.objects.exists()


def test_lab_records_a_sale_once(lab_api, rings, shelf):
    services.product_stock_change(product=rings, location=shelf, kind="received", quantity=10, idempotency_key="r")
    body = {"location_id": shelf.pk, "quantity": 3, "unit_price": "2.50", "channel": "market"}
    first = post(lab_api, f"/api/v1/inventory/products/{rings.pk}/sales", body, "till-1")
    again = post(lab_api, f"/api/v1/inventory/products/{rings.pk}/sales", body, "till-1")
    assert first.status_code == again.status_code == 201, first.content
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["quantity"], first.json()["unit_price"], first.json()["currency"]) == (3, "2.50", "EUR")
    assert first.json()["sold_on"] == timezone.localdate().isoformat()
    assert selectors.product_units(product=rings) == 7 and Sale.objects.count() == 1


@pytest.mark.parametrize("payload,status,detail", [
    ({"quantity": 11}, 422, "has 10 units"),
    ({"quantity": -1}, 422, "between 1 and"),
    ({"quantity": 10**9}, 422, "between 1 and"),
    ({"unit_price": "-1"}, 422, "0 or more"),
    ({"unit_price": "1e12"}, 422, ""),
    ({"channel": "flea"}, 422, "channel: Input should be"),
    ({"currency": "euro"}, 422, ""),
])
def test_bad_sales_change_nothing(lab_api, rings, shelf, payload, status, detail):
    services.product_stock_change(product=rings, location=shelf, kind="received", quantity=10, idempotency_key="r")
    body = {"location_id": shelf.pk, "quantity": 3, "unit_price": "2.50", "channel": "shop", **payload}
    assert_problem(post(lab_api, f"/api/v1/inventory/products/{rings.pk}/sales", body, "till-bad"), status,
                   detail_contains=detail)
    assert not Sale.objects.exists() and selectors.product_units(product=rings) == 10


def test_partners_cannot_book_products(api, rings, shelf):
    body = {"location_id": shelf.pk, "kind": "received", "quantity": 1}
    assert_problem(post(api, f"/api/v1/inventory/products/{rings.pk}/stock", body, "p"), 403)
    assert_problem(post(api, f"/api/v1/inventory/products/{rings.pk}/sales",
                        {"location_id": shelf.pk, "quantity": 1, "unit_price": 1, "channel": "shop"}, "p"), 403)
    assert not ProductMovement.objects.exists()


def test_unknown_products_are_404(lab_api, shelf):
    assert_problem(post(lab_api, "/api/v1/inventory/products/999999/stock",
                        {"location_id": shelf.pk, "kind": "received", "quantity": 1}, "u"), 404,
                   detail_contains="No product")

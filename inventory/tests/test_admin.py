import json
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory import selectors, services
from inventory.models import Filament, Location, ProductMovement, Sale, StockAlert
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


def test_scanning_a_label_code_opens_that_spool(admin_client):
    wanted, _other = spool(), spool()
    response = admin_client.get(reverse("admin:inventory_spool_changelist"), {"q": wanted.code.lower()})
    assert list(response.context["cl"].result_list) == [wanted]


def test_spool_page_shows_its_history_and_the_ledger_is_read_only(admin_client):
    s = spool(grams="500")
    services.spool_use(spool=s, grams_used=42, idempotency_key=key())
    page = admin_client.get(reverse("admin:inventory_spool_change", args=[s.pk])).content.decode()
    assert "-42.00" in page and "Used by a print" in page
    movement = s.movements.first()
    assert admin_client.post(reverse("admin:inventory_movement_delete", args=[movement.pk]),
                             {"post": "yes"}).status_code == 403
    assert s.movements.count() == 2


def test_filament_list_shows_stock(admin_client):
    f = FilamentFactory(colour_hex="#00AE42")
    spool(f, grams="750")
    html = admin_client.get(reverse("admin:inventory_filament_changelist")).content.decode()
    assert "#00AE42" in html and "750 g" in html


def test_archive_action(admin_client):
    s = spool()
    admin_client.post(reverse("admin:inventory_spool_changelist"), {"action": "archive", "_selected_action": [s.pk]})
    s.refresh_from_db()
    assert s.archived_at is not None


def test_receive_weigh_and_move_pages(admin_client):
    from decimal import Decimal

    from inventory.models import Spool

    filament = FilamentFactory(spool_weight_g=Decimal("250"))
    shelf = services.location_create(name="Shelf", kind="shelf")
    url = reverse("admin:inventory_filament_receive", args=[filament.pk])
    assert admin_client.get(url).status_code == 200
    form = {"grams": "1000", "count": "2", "location": shelf.pk, "lot_number": "L-1", "idempotency_key": "form-1"}
    assert admin_client.post(url, form).status_code == 302
    assert admin_client.post(url, form).status_code == 302  # the same form twice books once
    spools = Spool.objects.filter(filament=filament)
    assert spools.count() == 2 and {s.location for s in spools} == {shelf}

    s = spools.first()
    weigh = reverse("admin:inventory_spool_weigh", args=[s.pk])
    refused = admin_client.post(weigh, {"gross_grams": "100", "idempotency_key": "w-1"})
    assert refused.status_code == 200 and "less than the empty spool" in refused.content.decode()
    assert admin_client.post(weigh, {"gross_grams": "1200", "idempotency_key": "w-2"}).status_code == 302
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("950.00")

    box = services.location_create(name="Dry box", kind="dry_box")
    move = reverse("admin:inventory_spool_move", args=[s.pk])
    assert admin_client.post(move, {"location": box.pk, "idempotency_key": "m-1"}).status_code == 302
    s.refresh_from_db()
    assert s.location == box


# --- Saves go through the inventory's services ------------------------------------------


@pytest.fixture
def rings():
    return services.product_create(sku="RING", name="Rings", kind="bought", reorder_threshold_units=5)


@pytest.fixture
def shelf():
    return services.location_create(name="Shelf", kind="shelf")


def filament_form(filament, **changes) -> dict:
    fields = ["brand", "material", "name", "colour_hex", "diameter_mm", "density_g_cm3", "net_weight_g",
              "spool_weight_g", "cost_per_kg", "currency", "supplier", "purchase_url", "reorder_threshold_g",
              "lead_time_days"]
    return {**{f: getattr(filament, f) for f in fields}, "extra_colours": json.dumps(filament.extra_colours),
            **changes}


def test_raising_a_reorder_level_in_the_admin_raises_the_alert(admin_client):
    f = FilamentFactory()
    spool(f, grams="300")
    url = reverse("admin:inventory_filament_change", args=[f.pk])
    assert admin_client.post(url, filament_form(f, reorder_threshold_g="500")).status_code == 302
    assert StockAlert.objects.filter(filament=f, cleared_at__isnull=True).exists()
    refused = admin_client.post(url, filament_form(f, extra_colours='["blue"]'))
    assert refused.status_code == 200 and "Further colour" in refused.content.decode()
    added = admin_client.post(reverse("admin:inventory_filament_add"), filament_form(f, name="Galaxy Black"))
    assert added.status_code == 302 and Filament.objects.filter(name="Galaxy Black").exists()


def test_products_and_locations_are_saved_through_the_services(admin_client, rings, shelf):
    services.product_stock_change(product=rings, location=shelf, kind="received", quantity=3, idempotency_key="r")
    form = {"sku": "RING", "name": "Rings", "kind": "bought", "unit_cost": "0.10", "currency": "EUR",
            "reorder_threshold_units": "10", "lead_time_days": "7", "supplier": "", "purchase_url": "",
            "stock-TOTAL_FORMS": "0", "stock-INITIAL_FORMS": "0", "movements-TOTAL_FORMS": "0",
            "movements-INITIAL_FORMS": "0"}
    assert admin_client.post(reverse("admin:inventory_product_change", args=[rings.pk]), form).status_code == 302
    assert StockAlert.objects.filter(product=rings, cleared_at__isnull=True).exists()

    box = services.location_create(name="Box", kind="dry_box", parent=shelf)
    url = reverse("admin:inventory_location_change", args=[shelf.pk])
    refused = admin_client.post(url, {"name": "Shelf", "kind": "shelf", "parent": box.pk})
    assert refused.status_code == 200 and "cannot lie inside itself" in refused.content.decode()
    shelf.refresh_from_db()
    assert shelf.parent is None
    added = admin_client.post(reverse("admin:inventory_location_add"), {"name": " Drawer ", "kind": "other"})
    assert added.status_code == 302 and Location.objects.filter(name="Drawer").exists()


def test_a_spools_lot_is_corrected_but_not_its_stock(admin_client):
    s = spool(grams="1000")
    response = admin_client.post(reverse("admin:inventory_spool_change", args=[s.pk]), {
        "lot_number": " L-42 ", "initial_grams": "5", "movements-TOTAL_FORMS": "0", "movements-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302
    s.refresh_from_db()
    assert (s.lot_number, s.initial_grams, s.remaining_grams) == ("L-42", Decimal("1000.00"), Decimal("1000.00"))


# --- Doors for booking use, counted corrections, product units and sales -----------------


def test_book_a_failed_print_on_a_spool(admin_client, admin_user):
    s = spool(grams="1000")
    url = reverse("admin:inventory_spool_use", args=[s.pk])
    assert admin_client.get(url).status_code == 200
    form = {"grams": "12.5", "kind": "failed_print", "reason": "spaghetti", "idempotency_key": "use-1"}
    assert admin_client.post(url, form).status_code == 302
    assert admin_client.post(url, form).status_code == 302  # the same form twice books once
    movement = s.movements.get(kind="failed_print")
    assert (movement.delta_grams, movement.reason, movement.created_by) == (Decimal("-12.50"), "spaghetti",
                                                                            admin_user)
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("987.50")


def test_the_admin_shows_micrograms_rounded_to_hundredths(admin_client):
    s = spool(grams="1000")
    services.spool_use(spool=s, grams_used="0.014474", idempotency_key="klipper-1")
    page = admin_client.get(reverse("admin:inventory_spool_change", args=[s.pk])).content.decode()
    assert "999.99" in page and "-0.01" in page
    assert "999.985526" not in page and "0.014474" not in page
    listing = admin_client.get(reverse("admin:inventory_movement_changelist")).content.decode()
    assert "-0.01" in listing and "0.014474" not in listing


@pytest.mark.parametrize("form,error", [
    ({"grams": "-5", "kind": "used"}, "must be more than 0 g"),
    ({"grams": "2000", "kind": "used"}, "it cannot give 2000.00 g"),
    ({"grams": "1000000", "kind": "used"}, "more than any spool holds"),
    ({"grams": "5", "kind": "received"}, "Select a valid choice"),
])
def test_bad_uses_are_refused_on_the_form(admin_client, form, error):
    s = spool(grams="1000")
    response = admin_client.post(reverse("admin:inventory_spool_use", args=[s.pk]),
                                 {**form, "reason": "", "idempotency_key": "bad-use"})
    assert response.status_code == 200 and response.context["form"].errors
    assert error in response.content.decode()
    assert s.movements.count() == 1


def test_correct_the_count_of_a_spool(admin_client):
    s = spool(grams="1000")
    url = reverse("admin:inventory_spool_adjust", args=[s.pk])
    refused = admin_client.post(url, {"remaining_grams": "700", "reason": "", "idempotency_key": "a-0"})
    assert refused.status_code == 200 and refused.context["form"].errors
    too_much = admin_client.post(url, {"remaining_grams": "60000", "reason": "count", "idempotency_key": "a-1"})
    assert too_much.status_code == 200 and "more than any spool holds" in too_much.content.decode()
    assert s.movements.count() == 1
    assert admin_client.post(url, {"remaining_grams": "700", "reason": "stocktaking",
                                   "idempotency_key": "a-2"}).status_code == 302
    s.refresh_from_db()
    assert s.remaining_grams == Decimal("700.00")
    assert s.movements.get(kind="adjusted").reason == "stocktaking"


def test_book_units_and_record_a_sale(admin_client, rings, shelf):
    stock_url = reverse("admin:inventory_product_stock", args=[rings.pk])
    assert admin_client.get(stock_url).status_code == 200
    assert admin_client.post(stock_url, {"location": shelf.pk, "kind": "received", "quantity": "10",
                                         "reason": "delivery", "idempotency_key": "s-1"}).status_code == 302
    sale_url = reverse("admin:inventory_product_sale", args=[rings.pk])
    assert admin_client.get(sale_url).status_code == 200
    sale = {"location": shelf.pk, "quantity": "3", "unit_price": "2.50", "currency": "eur", "channel": "market",
            "sold_on": "2026-01-05", "idempotency_key": "sale-1"}
    assert admin_client.post(sale_url, sale).status_code == 302
    assert admin_client.post(sale_url, sale).status_code == 302  # the same form twice books once
    recorded = Sale.objects.get()
    assert (recorded.quantity, recorded.currency, str(recorded.sold_on)) == (3, "EUR", "2026-01-05")
    assert selectors.product_units(product=rings) == 7
    listed = admin_client.get(reverse("admin:inventory_product_changelist"))
    assert list(listed.context["cl"].result_list)[0].units_in_stock == 7


@pytest.mark.parametrize("view,form,error", [
    ("stock", {"kind": "received", "quantity": "-1"}, "between 1 and"),
    ("stock", {"kind": "received", "quantity": "1000000000"}, "between 1 and"),
    ("stock", {"kind": "sold", "quantity": "1"}, "Select a valid choice"),
    ("sale", {"quantity": "99", "unit_price": "1", "currency": "EUR", "channel": "shop", "sold_on": "2026-01-05"},
     "has 0 units"),
    ("sale", {"quantity": "-2", "unit_price": "1", "currency": "EUR", "channel": "shop", "sold_on": "2026-01-05"},
     "between 1 and"),
    ("sale", {"quantity": "1", "unit_price": "-1", "currency": "EUR", "channel": "shop", "sold_on": "2026-01-05"},
     "0 or more"),
])
def test_bad_product_bookings_are_refused_on_the_form(admin_client, rings, shelf, view, form, error):
    url = reverse(f"admin:inventory_product_{view}", args=[rings.pk])
    response = admin_client.post(url, {"location": shelf.pk, "reason": "", "idempotency_key": "bad", **form})
    assert response.status_code == 200 and error in response.content.decode()
    assert not ProductMovement.objects.exists() and not Sale.objects.exists()

"""Every door reads stock through the same selectors, so they all count the same grams and units."""

from decimal import Decimal

import pytest
from django.urls import reverse

from conftest import ApiClient
from inventory import selectors, services
from inventory.matching import match_slots
from inventory.shopping import shopping_list
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


@pytest.fixture
def orange():
    """300 g on a spool in stock, and 500 g on an archived one that no longer counts."""
    filament = FilamentFactory(colour_hex="#FF8000", reorder_threshold_g=Decimal("400"))
    spool(filament, grams="300")
    services.spool_archive(spool=spool(filament, grams="500"))
    return filament


def test_grams_in_stock_are_the_same_everywhere(orange, admin_client, lab_read_key):
    assert selectors.filament_stock_g(filament=orange) == Decimal("300")
    client = ApiClient(lab_read_key)
    assert Decimal(client.get("/api/v1/inventory/filaments").json()["items"][0]["stock_g"]) == Decimal("300")
    assert match_slots(materials=["PLA"], colours=["#FF8000"])[0].available_g == Decimal("300")
    assert [row.in_stock for row in shopping_list()] == [Decimal("300.00")]
    assert orange.alerts.get(cleared_at__isnull=True).level == Decimal("300.00")
    listed = admin_client.get(reverse("admin:inventory_filament_changelist"))
    assert list(listed.context["cl"].result_list)[0].stock_g == Decimal("300")
    assert [s["remaining_weight"] for s in client.get("/spoolman/api/v1/spool").json()] == [300.0]


def test_spool_lists_filter_alike(orange):
    active = selectors.spool_list()
    assert [s.remaining_grams for s in active] == [Decimal("300.00")]
    assert selectors.spool_list(archived=True).count() == 1 and selectors.spool_list(archived=None).count() == 2
    code = active[0].code
    assert list(selectors.spool_list(code=code.lower())) == list(active)
    assert active[0].last_used is None
    services.spool_use(spool=active[0], grams_used=1, idempotency_key=key())
    assert selectors.spool_list().get().last_used is not None


def test_units_in_stock_are_summed_over_locations():
    rings = services.product_create(sku="RING", name="Rings", kind="bought")
    for name in ("Shelf", "Market box"):
        location = services.location_create(name=name, kind="other")
        services.product_stock_change(product=rings, location=location, kind="received", quantity=4,
                                      idempotency_key=key())
    assert selectors.product_units(product=rings) == 8
    assert selectors.product_list().get().units_in_stock == 8

import pytest
from django.urls import reverse

from inventory import services
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

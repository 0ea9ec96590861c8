"""A spool's RFID tag: the id a printer reads from it (a Bambu spool's tray UUID), one spool in stock per tag."""

import pytest
from django.urls import reverse

from fablab.exceptions import Conflict, InvalidInput
from fablab.tests.helpers import assert_problem
from inventory import services
from inventory.models import Movement, Spool
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db

UUID = "5F3D8925633343C29FB9A97FA9125971"  # a real Bambu spool's tray_uuid (the X1C corpus payload, tray 0)


def test_a_spool_is_received_with_its_tag_in_upper_case_hex():
    tagged = spool(rfid_tag="5f3d8925-6333-43c2-9fb9-a97fa9125971")
    assert tagged.rfid_tag == UUID
    assert spool(rfid_tag=" DE:6C:F0:73 00:00:01:00 ").rfid_tag == "DE6CF07300000100"
    assert spool().rfid_tag == ""
    assert spool(rfid_tag="").rfid_tag == spool(rfid_tag=None).rfid_tag == ""


@pytest.mark.parametrize("tag", ["not-hex-at-all", "ABC", "F" * 65, "5F3D8925633343C29FB9A97FA912597G", 1234,
                                 "5F3D\x0089", "0" * 32, "0000-0000"])
def test_a_bad_tag_is_refused_and_nothing_is_received(tag):
    filament = FilamentFactory()
    with pytest.raises(InvalidInput) as refused:
        services.spool_receive(filament=filament, initial_grams=1000, idempotency_key=key(), rfid_tag=tag)
    assert "rfid_tag" in str(refused.value.message) or "RFID" in str(refused.value.message)
    assert not Spool.objects.filter(filament=filament).exists() and not Movement.objects.exists()


def test_a_tag_names_one_spool_in_stock_and_comes_free_when_that_spool_is_archived():
    first = spool(rfid_tag=UUID)
    filament = FilamentFactory()
    with pytest.raises(Conflict) as taken:
        services.spool_receive(filament=filament, initial_grams=1000, idempotency_key=key(), rfid_tag=UUID.lower())
    assert first.code in str(taken.value.message)
    assert not Spool.objects.filter(filament=filament).exists()
    services.spool_archive(spool=first)
    again = spool(filament, rfid_tag=UUID)  # the empty spool refilled, or its tag reused
    assert again.rfid_tag == UUID and Spool.objects.filter(rfid_tag=UUID).count() == 2


def test_the_tag_of_a_spool_in_stock_is_set_changed_and_removed():
    s = spool(lot_number="L-7")
    services.spool_update(spool=s, rfid_tag="de6cf07300000100")
    s.refresh_from_db()
    assert (s.rfid_tag, s.lot_number) == ("DE6CF07300000100", "L-7")  # the lot stays as it was
    other = spool(rfid_tag=UUID)
    with pytest.raises(Conflict):
        services.spool_update(spool=Spool.objects.get(pk=s.pk), rfid_tag=UUID)
    with pytest.raises(InvalidInput):
        services.spool_update(spool=Spool.objects.get(pk=s.pk), rfid_tag="xyz")
    s.refresh_from_db()
    assert s.rfid_tag == "DE6CF07300000100"
    services.spool_update(spool=other, rfid_tag="")
    services.spool_update(spool=s, rfid_tag=UUID)  # free now
    s.refresh_from_db()
    assert s.rfid_tag == UUID


def test_the_api_receives_a_tagged_spool_and_refuses_a_taken_or_bad_tag(lab_api):
    filament = FilamentFactory()

    def receive(tag, idempotency_key):
        return lab_api.post("/api/v1/inventory/spools", {"filament_id": filament.pk, "grams": 1000, "rfid_tag": tag},
                            content_type="application/json", headers={"Idempotency-Key": idempotency_key})

    created = receive(UUID.lower(), "po-1/1")
    assert created.status_code == 201 and created.json()["rfid_tag"] == UUID
    assert lab_api.get(f"/api/v1/inventory/spools/{created.json()['id']}").json()["rfid_tag"] == UUID
    assert_problem(receive(UUID, "po-1/2"), 409, detail_contains=UUID)
    assert_problem(receive("G" * 32, "po-1/3"), 422, detail_contains="hexadecimal")
    assert_problem(receive("A" * 201, "po-1/4"), 422)
    assert Spool.objects.filter(filament=filament).count() == 1


def test_staff_set_the_tag_on_the_spools_page_and_scan_it_in_the_search(admin_client):
    s, other = spool(), spool(rfid_tag=UUID)
    url = reverse("admin:inventory_spool_change", args=[s.pk])
    assert admin_client.post(url, {"lot_number": "L-1", "rfid_tag": "de6c-f073-0000-0100",
                                   "movements-TOTAL_FORMS": 0, "movements-INITIAL_FORMS": 0}).status_code == 302
    s.refresh_from_db()
    assert (s.rfid_tag, s.lot_number) == ("DE6CF07300000100", "L-1")
    taken = admin_client.post(url, {"lot_number": "L-1", "rfid_tag": UUID,
                                    "movements-TOTAL_FORMS": 0, "movements-INITIAL_FORMS": 0})
    assert taken.status_code == 200 and "already has this RFID tag" in taken.content.decode()
    bad = admin_client.post(url, {"lot_number": "L-1", "rfid_tag": "nope",
                                  "movements-TOTAL_FORMS": 0, "movements-INITIAL_FORMS": 0})
    assert bad.status_code == 200 and "hexadecimal" in bad.content.decode()
    s.refresh_from_db()
    assert s.rfid_tag == "DE6CF07300000100"
    found = admin_client.get(reverse("admin:inventory_spool_changelist"), {"q": UUID})
    assert list(found.context["cl"].result_list) == [other]


def test_the_receive_page_takes_a_tag_for_one_spool_only(admin_client):
    filament = FilamentFactory()
    url = reverse("admin:inventory_filament_receive", args=[filament.pk])
    two = admin_client.post(url, {"grams": "1000", "count": "2", "rfid_tag": UUID, "idempotency_key": "form-t1"})
    assert two.status_code == 200 and "receive the tagged spool on its own" in two.content.decode()
    assert not Spool.objects.filter(filament=filament).exists()
    assert admin_client.post(url, {"grams": "1000", "count": "1", "rfid_tag": UUID.lower(),
                                   "idempotency_key": "form-t2"}).status_code == 302
    assert Spool.objects.get(filament=filament).rfid_tag == UUID
    taken = admin_client.post(url, {"grams": "1000", "count": "1", "rfid_tag": UUID, "idempotency_key": "form-t3"})
    assert taken.status_code == 200 and "already has the RFID tag" in taken.content.decode()
    assert Spool.objects.filter(filament=filament).count() == 1

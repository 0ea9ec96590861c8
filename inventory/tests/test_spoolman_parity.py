"""Spoolman's own behaviour where fablab now matches it, with the requests as Spoolman's clients and its
integration suite send them: vendors without unique names, filaments without vendor or material, the fields
Spoolman keeps on a filament and a spool, and colours as Spoolman checks them."""

import json

import pytest

from fablab.tests.helpers import ApiClient
from inventory.models import Filament, Spool, Vendor

pytestmark = pytest.mark.django_db


def _send(client, method, path, body=None):
    return getattr(client, method)(f"/spoolman/api/v1{path}", json.dumps(body or {}), content_type="application/json")


def test_vendors_may_share_a_name_or_have_an_empty_one(lab_key):
    client = ApiClient(lab_key)
    first = _send(client, "post", "/vendor", {"name": "John", "empty_spool_weight": 246})
    second = _send(client, "post", "/vendor", {"name": "John"})
    empty = _send(client, "post", "/vendor", {"name": ""})
    assert (first.status_code, second.status_code, empty.status_code) == (200, 200, 200)
    assert first.json()["id"] != second.json()["id"] and empty.json()["name"] == ""
    assert Vendor.objects.filter(name="John").count() == 2

    # a filament of the second John belongs to that one, not to the first of the name
    filament = _send(client, "post", "/filament", {"vendor_id": second.json()["id"], "density": 1.25,
                                                   "diameter": 1.75}).json()
    assert filament["vendor"]["id"] == second.json()["id"]
    assert Filament.objects.get(pk=filament["id"]).vendor_id == second.json()["id"]
    assert [f["id"] for f in client.get(f"/spoolman/api/v1/filament?vendor.id={first.json()['id']}").json()] == []


def test_a_filament_needs_only_density_and_diameter(lab_key):
    client = ApiClient(lab_key)
    response = _send(client, "post", "/filament", {"density": 1.25, "diameter": 1.75})
    assert response.status_code == 200, response.content
    filament = response.json()
    assert (filament["vendor"], filament["material"], filament["name"]) == (None, None, None)
    assert [f["id"] for f in client.get("/spoolman/api/v1/filament?vendor.id=-1").json()] == [filament["id"]]
    stored = Filament.objects.get(pk=filament["id"])
    assert (stored.brand, stored.material, stored.vendor_id) == ("", "", None)


def test_the_fields_spoolman_keeps_on_a_filament_and_a_spool_come_back(lab_key):
    client = ApiClient(lab_key)
    vendor = _send(client, "post", "/vendor", {"name": "Polymaker"}).json()
    sent = {"name": "Filament X", "vendor_id": vendor["id"], "material": "PLA", "price": 100, "density": 1.25,
            "diameter": 1.75, "weight": 1000, "spool_weight": 250, "article_number": "123456789",
            "comment": "abcdefghåäö", "settings_extruder_temp": 200, "settings_bed_temp": 60,
            "color_hex": "FF000088", "external_id": "polymaker_pla_1000_175"}
    filament = _send(client, "post", "/filament", sent).json()
    for key in ("article_number", "comment", "settings_extruder_temp", "settings_bed_temp", "color_hex",
                "external_id"):
        assert filament[key] == sent[key], key
    assert Filament.objects.get(pk=filament["id"]).colour_hex == "#FF0000"  # fablab's own colour stays RRGGBB

    multi = _send(client, "patch", f"/filament/{filament['id']}",
                  {"multi_color_hexes": "FF0000,00FF00", "multi_color_direction": "coaxial"}).json()
    assert (multi["multi_color_hexes"], multi["multi_color_direction"]) == ("FF0000,00FF00", "coaxial")

    spool = _send(client, "post", "/spool", {"filament_id": filament["id"], "remaining_weight": 750,
                                             "comment": "abcdefghåäö"}).json()
    assert spool["comment"] == "abcdefghåäö"
    changed = _send(client, "patch", f"/spool/{spool['id']}", {"comment": "dried"}).json()
    assert changed["comment"] == "dried" and Spool.objects.get(pk=spool["id"]).comment == "dried"
    # without a comment, clients see the spool's label code
    cleared = _send(client, "patch", f"/spool/{spool['id']}", {"comment": None}).json()
    assert cleared["comment"] == Spool.objects.get(pk=spool["id"]).code


def test_a_both_colours_request_is_refused_and_writes_nothing(lab_key):
    client = ApiClient(lab_key)
    before = Filament.objects.count()
    response = _send(client, "post", "/filament", {"density": 1.25, "diameter": 1.75, "color_hex": "FF0000",
                                                   "multi_color_hexes": "FF0000,00FF00",
                                                   "multi_color_direction": "coaxial"})
    assert response.status_code == 422 and "either" in response.json()["message"]
    assert Filament.objects.count() == before

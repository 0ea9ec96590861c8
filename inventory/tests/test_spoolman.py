"""The Spoolman subset Moonraker and OctoPrint use, with their requests as they send them."""

import json
import math
from decimal import Decimal

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from fablab.choices import ApiKeyScope
from fablab.tests.factories import PartnerFactory, make_api_key
from fablab.tests.helpers import ApiClient
from inventory import selectors
from inventory.models import Movement
from inventory.tests.factories import FilamentFactory, spool

pytestmark = pytest.mark.django_db


@pytest.fixture
def orange():
    f = FilamentFactory(colour_hex="#FF8000", diameter_mm=Decimal("1.75"), density_g_cm3=Decimal("1.24"),
                        spool_weight_g=Decimal("200"))
    return spool(f, grams="1000")


def test_octoprint_lists_spools_and_commits_length_with_the_key_in_the_url(lab_key, orange):
    client = Client()  # OctoPrint-Spoolman sends no headers
    base = f"/spoolman/{lab_key}/api/v1"
    spools = client.get(f"{base}/spool").json()
    assert [s["id"] for s in spools] == [orange.pk]
    assert spools[0]["filament"]["color_hex"] == "FF8000" and spools[0]["remaining_weight"] == 1000.0
    response = client.put(f"{base}/spool/{orange.pk}/use", {"use_length": 1000.0}, content_type="application/json")
    assert response.status_code == 200
    # 1 m of 1.75 mm filament at 1.24 g/cm³ is 2.98 g
    expected = 1000 * math.pi * 0.875 ** 2 / 1000 * 1.24
    assert response.json()["used_weight"] == pytest.approx(round(expected, 2), abs=0.005)
    movement = Movement.objects.filter(spool=orange, kind="used").get()
    assert movement.source_type == "spoolman" and movement.source_id.startswith("fl_")


def test_moonraker_with_the_key_in_a_header(lab_key, orange):
    client = ApiClient(lab_key)
    assert client.get(f"/spoolman/api/v1/spool/{orange.pk}").json()["id"] == orange.pk
    response = client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_weight": 12.5},
                          content_type="application/json")
    assert response.json()["remaining_weight"] == 987.5
    assert client.get("/spoolman/api/v1/info").json()["version"]


@pytest.mark.parametrize("body,message", [
    ({}, "either use_weight or use_length"),
    ({"use_weight": 1, "use_length": 1}, "either use_weight or use_length"),
    ({"use_weight": -1}, "positive number of grams"),
    ({"use_length": "x"}, "use_length"),
    ({"use_length": -3}, "positive number of millimetres"),
])
def test_bad_reports_are_refused_in_spoolmans_format(lab_key, orange, body, message):
    response = ApiClient(lab_key).put(f"/spoolman/api/v1/spool/{orange.pk}/use", body,
                                      content_type="application/json")
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert Movement.objects.filter(spool=orange).count() == 1


def test_unknown_spool_is_404_so_moonraker_forgets_it(lab_key):
    response = ApiClient(lab_key).put("/spoolman/api/v1/spool/999999/use", {"use_length": 5},
                                      content_type="application/json")
    assert response.status_code == 404 and "999999" in response.json()["message"]


def test_a_zero_report_is_acknowledged_without_booking(lab_key, orange):
    response = ApiClient(lab_key).put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_length": 0},
                                      content_type="application/json")
    assert response.status_code == 200 and response.json()["remaining_weight"] == 1000.0
    assert Movement.objects.filter(spool=orange).count() == 1


def _mm_grams(length_mm: float) -> Decimal:
    """What `length_mm` of 1.75 mm filament at 1.24 g/cm³ weighs, to the microgram."""
    return Decimal(str(length_mm * math.pi * 0.875 ** 2 / 1000 * 1.24)).quantize(Decimal("0.000001"))


def test_tiny_reports_are_booked_not_rounded_away(lab_key, orange):
    """Moonraker sends a few millimetres at a time: 20 × 1.5 mm books what 30 mm weigh."""
    client = ApiClient(lab_key)
    for _ in range(20):
        response = client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_length": 1.5},
                              content_type="application/json")
        assert response.status_code == 200
    orange.refresh_from_db()
    used = Decimal("1000") - orange.remaining_grams
    exact = Decimal(str(30 * math.pi * 0.875 ** 2 / 1000 * 1.24))  # 0.0895 g, what Spoolman books
    assert abs(used - exact) / exact < Decimal("0.01")
    assert used == 20 * _mm_grams(1.5)
    assert Movement.objects.filter(spool=orange, kind="used").count() == 20
    assert response.json()["used_weight"] == pytest.approx(float(used))


def test_a_thousand_small_reports_add_up_exactly(lab_key, orange):
    """0.5, 2 and 5 mm reports (once +68 % and −33 % off after 50 of each) add up to the microgram."""
    client = ApiClient(lab_key)
    lengths = [0.5, 2, 5] * 333 + [1.5]
    for length_mm in lengths:
        client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_length": length_mm},
                   content_type="application/json")
    orange.refresh_from_db()
    assert orange.remaining_grams == Decimal("1000") - sum(_mm_grams(length) for length in lengths)
    assert orange.remaining_grams == selectors.spool_ledger_total(spool=orange)
    assert Movement.objects.filter(spool=orange, kind="used").count() == 1000


def test_only_the_labs_write_keys_change_stock(orange, lab_read_key):
    _key, partner_key = make_api_key(PartnerFactory(), scope=ApiKeyScope.WRITE)
    assert Client().get("/spoolman/api/v1/spool").status_code == 401
    assert ApiClient(partner_key).get("/spoolman/api/v1/spool").status_code == 403
    assert ApiClient(lab_read_key).get("/spoolman/api/v1/spool").status_code == 200
    response = ApiClient(lab_read_key).put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_weight": 1},
                                           content_type="application/json")
    assert response.status_code == 403
    forged = "fl_ABCDEFGH_" + "x" * 40
    assert Client().get(f"/spoolman/{forged}/api/v1/spool").status_code == 401
    assert Movement.objects.filter(spool=orange).count() == 1


def test_archived_spools_are_hidden_unless_asked(lab_key, orange):
    from inventory import services

    services.spool_archive(spool=orange)
    client = ApiClient(lab_key)
    assert client.get("/spoolman/api/v1/spool").json() == []
    assert client.get("/spoolman/api/v1/spool?allow_archived=true").json()[0]["archived"] is True


def test_last_used_is_the_last_consumption(lab_key, orange):
    client = ApiClient(lab_key)
    assert client.get(f"/spoolman/api/v1/spool/{orange.pk}").json()["last_used"] is None  # received, not used
    client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_weight": 2}, content_type="application/json")
    used = Movement.objects.get(spool=orange, kind="used")
    listed = client.get("/spoolman/api/v1/spool").json()[0]
    assert listed["last_used"] == used.created_at.isoformat()


def test_the_url_takes_keys_as_fablab_writes_them(lab_key, orange):
    import re

    from fablab.services import API_KEY_PATTERN

    assert re.fullmatch(API_KEY_PATTERN, lab_key)
    assert Client().get(f"/spoolman/{lab_key}/api/v1/spool").status_code == 200
    assert Client().get("/spoolman/not-a-key/api/v1/spool").status_code == 404


async def _connect(path: str, headers=()):
    from fablab.asgi import application

    scope = {"type": "websocket", "path": path, "headers": list(headers), "query_string": b"", "subprotocols": []}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    return communicator, await communicator.receive_output(timeout=5)


@pytest.mark.django_db(transaction=True)
def test_moonraker_websocket_is_accepted_for_lab_keys_only(lab_key):
    import asyncio

    async def scenario():
        communicator, answer = await _connect(f"/spoolman/{lab_key}/api/v1/spool")
        assert answer == {"type": "websocket.accept"}
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=5)

        communicator, answer = await _connect("/spoolman/api/v1/spool", headers=[(b"x-api-key", lab_key.encode())])
        assert answer == {"type": "websocket.accept"}
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=5)

        _c, answer = await _connect("/spoolman/api/v1/spool")
        assert answer == {"type": "websocket.close", "code": 4401}
        _c, answer = await _connect("/somewhere/else")
        assert answer == {"type": "websocket.close", "code": 4404}

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_real_asgi_server_websocket_and_usage_reports(lab_key, orange):
    """uvicorn on loopback: a WebSocket held open like Moonraker's, usage reported over HTTP."""
    import threading
    import time

    import requests
    import uvicorn
    from websockets.sync.client import connect

    from fablab.asgi import application
    from tests.conftest import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        with connect(f"ws://127.0.0.1:{port}/spoolman/api/v1/spool",
                     additional_headers={"X-API-Key": lab_key}, open_timeout=5) as websocket:
            websocket.ping().wait(timeout=5)  # Moonraker pings every 20 s
            response = requests.put(f"http://127.0.0.1:{port}/spoolman/{lab_key}/api/v1/spool/{orange.pk}/use",
                                    json={"use_weight": 7.25}, timeout=10)
            assert response.status_code == 200, response.text
            assert response.json()["remaining_weight"] == 992.75
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- Spoolman's semantics --------------------------------------------------------------------


def test_over_use_empties_the_spool_answers_200_and_raises_the_alert(lab_key, orange):
    from inventory.models import StockAlert

    orange.filament.reorder_threshold_g = Decimal("500")
    orange.filament.save()
    client = ApiClient(lab_key)
    response = client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_weight": 5000},
                          content_type="application/json")
    assert response.status_code == 200
    assert (response.json()["remaining_weight"], response.json()["used_weight"]) == (0.0, 1000.0)
    movement = Movement.objects.get(spool=orange, kind="used")
    assert movement.delta_grams == Decimal("-1000") and "5000.000 g" in movement.reason
    assert StockAlert.objects.filter(filament=orange.filament, cleared_at__isnull=True).count() == 1
    # the host keeps reporting while it prints on: the spool stays at 0, never below
    again = client.put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_length": 50},
                       content_type="application/json")
    assert again.status_code == 200 and again.json()["remaining_weight"] == 0.0
    orange.refresh_from_db()
    assert orange.remaining_grams == 0 == selectors.spool_ledger_total(spool=orange)


def test_an_archived_spool_still_takes_reports(lab_key, orange):
    from inventory import services

    services.spool_archive(spool=orange)
    response = ApiClient(lab_key).put(f"/spoolman/api/v1/spool/{orange.pk}/use", {"use_weight": 2.5},
                                      content_type="application/json")
    assert response.status_code == 200
    assert response.json()["archived"] is True and response.json()["remaining_weight"] == 997.5
    orange.refresh_from_db()
    assert orange.remaining_grams == Decimal("997.5") == selectors.spool_ledger_total(spool=orange)


def test_fablabs_own_api_still_refuses_over_use_and_archived_spools(lab_api, orange):
    from inventory import services

    over = lab_api.post(f"/api/v1/inventory/spools/{orange.pk}/use", {"grams": 5000},
                        content_type="application/json", headers={"Idempotency-Key": "over-1"})
    assert over.status_code == 422
    services.spool_archive(spool=orange)
    archived = lab_api.post(f"/api/v1/inventory/spools/{orange.pk}/use", {"grams": 1},
                            content_type="application/json", headers={"Idempotency-Key": "arch-1"})
    assert archived.status_code == 409
    assert Movement.objects.filter(spool=orange).count() == 1


@pytest.mark.parametrize("path", ["/spoolman/api/v1/nothing", "/spoolman/api/v1/spool/1/nothing",
                                  "/spoolman/api/v2/spool", "/spoolman/nothing", "/spoolman/{key}/api/v1/nothing"])
def test_unknown_paths_answer_spoolmans_json_404(lab_key, path):
    response = ApiClient(lab_key).get(path.format(key=lab_key))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json") and response.json()["message"]


@pytest.mark.parametrize("path", ["/spoolman/", "/spoolman/{key}", "/spoolman/{key}/"])
def test_the_mount_answers_like_spoolmans_root_so_monitors_see_it_up(lab_key, path):
    client = ApiClient(lab_key)
    response = client.get(path.format(key=lab_key))
    assert response.status_code == 200
    assert response.json()["version"] and "api/v1/" in response.json()["message"]
    refused = client.post(path.format(key=lab_key), {}, content_type="application/json")
    assert refused.status_code == 405 and refused.json()["message"]


@pytest.fixture
def shelf_of_spools():
    """Five spools: two PETG of another brand in a dry box, three PLA on the shelf (one archived)."""
    from inventory import services
    from inventory.models import Location

    shelf = Location.objects.create(name="Shelf A")
    box = Location.objects.create(name="Dry box", parent=shelf)
    pla = FilamentFactory(brand="Prusament", material="PLA", name="Galaxy Black")
    petg = FilamentFactory(brand="Polymaker", material="PETG", name="Teal")
    spools = [spool(pla, grams="1000", location=shelf, lot_number="L-1"),
              spool(pla, grams="250", location=shelf),
              spool(petg, grams="750", location=box, lot_number="L-2"),
              spool(petg, grams="500", location=box),
              spool(pla, grams="900")]
    services.spool_archive(spool=spools[1])
    return {"pla": pla, "petg": petg, "spools": spools}


def _ids_of(response):
    return [item["id"] for item in response.json()]


def test_limit_offset_sort_and_total_count(lab_key, shelf_of_spools):
    spools = shelf_of_spools["spools"]
    client = ApiClient(lab_key)
    response = client.get("/spoolman/api/v1/spool?limit=2&sort=id:desc")
    assert _ids_of(response) == [spools[4].pk, spools[3].pk]
    assert response["X-Total-Count"] == "4"  # the archived spool is not offered
    assert _ids_of(client.get("/spoolman/api/v1/spool?limit=2&offset=2&sort=id:desc")) == [spools[2].pk,
                                                                                           spools[0].pk]
    ordered = client.get("/spoolman/api/v1/spool?sort=remaining_weight:asc,id:desc&allow_archived=true")
    assert _ids_of(ordered) == [s.pk for s in (spools[1], spools[3], spools[2], spools[4], spools[0])]
    assert ordered["X-Total-Count"] == "5"
    by_material = client.get("/spoolman/api/v1/spool?sort=filament.material:asc,location:asc")
    assert _ids_of(by_material)[:2] == [spools[2].pk, spools[3].pk]


@pytest.mark.parametrize("query,status,message", [
    ("sort=id", 400, "expected the form"),
    ("sort=id:sideways", 400, "asc' or 'desc"),
    ("sort=secret:asc", 400, "Invalid field name"),
    ("limit=-1", 422, "whole number"),
    ("offset=x", 422, "whole number"),
    ("filament.id=1,x", 422, "IDs separated by commas"),
])
def test_bad_queries_are_refused_with_a_message(lab_key, shelf_of_spools, query, status, message):
    response = ApiClient(lab_key).get(f"/spoolman/api/v1/spool?{query}")
    assert response.status_code == status and message in response.json()["message"]


def test_spool_filters_as_spoolman_has_them(lab_key, shelf_of_spools):
    pla, petg, spools = shelf_of_spools["pla"], shelf_of_spools["petg"], shelf_of_spools["spools"]
    client = ApiClient(lab_key)

    def ids(query):
        return sorted(_ids_of(client.get(f"/spoolman/api/v1/spool?{query}")))

    assert ids(f"filament.id={petg.pk}") == sorted([spools[2].pk, spools[3].pk])
    assert ids(f"filament_id={petg.pk},{pla.pk}") == sorted([spools[0].pk, spools[2].pk, spools[3].pk,
                                                             spools[4].pk])
    assert ids("filament.material=pet") == ids('filament.material="PETG"') == ids(f"filament.id={petg.pk}")
    assert ids('filament.material="PET"') == []
    assert ids("location=dry") == ids(f"filament.id={petg.pk}")  # a location is matched on its path
    assert ids('location="Shelf A"') == [spools[0].pk]
    assert ids("location=") == [spools[4].pk]
    assert ids("location=,dry") == sorted([spools[2].pk, spools[3].pk, spools[4].pk])
    assert ids("lot_nr=L-") == sorted([spools[0].pk, spools[2].pk])
    assert ids("filament.vendor.name=poly") == ids(f"filament.id={petg.pk}")
    vendors = {v["name"]: v["id"] for v in client.get("/spoolman/api/v1/vendor").json()}
    assert ids(f"filament.vendor.id={vendors['Polymaker']}") == ids(f"filament.id={petg.pk}")
    assert ids("filament.name=galaxy&allow_archived=true") == sorted([spools[0].pk, spools[1].pk, spools[4].pk])


def test_vendors_are_the_filament_brands(lab_key, shelf_of_spools):
    client = ApiClient(lab_key)
    response = client.get("/spoolman/api/v1/vendor?sort=name:asc")
    assert response.status_code == 200 and response["X-Total-Count"] == "2"
    vendors = response.json()
    assert [v["name"] for v in vendors] == ["Polymaker", "Prusament"]
    assert set(vendors[0]) >= {"id", "registered", "name", "extra"}
    assert client.get(f"/spoolman/api/v1/vendor/{vendors[0]['id']}").json()["name"] == "Polymaker"
    assert client.get("/spoolman/api/v1/vendor/999999").status_code == 404
    filament = client.get(f"/spoolman/api/v1/filament/{shelf_of_spools['petg'].pk}").json()
    assert filament["vendor"] == vendors[0]
    listed = client.get(f"/spoolman/api/v1/filament?vendor.id={vendors[1]['id']}")
    assert _ids_of(listed) == [shelf_of_spools["pla"].pk] and listed["X-Total-Count"] == "1"


def test_settings_answer_as_spoolman_does(lab_key, shelf_of_spools):
    client = ApiClient(lab_key)
    assert client.get("/spoolman/api/v1/setting/currency").json() == {"value": '"EUR"', "is_set": False,
                                                                      "type": "string"}
    everything = client.get("/spoolman/api/v1/setting/").json()
    assert everything["currency"]["value"] == '"EUR"' and everything["round_prices"]["type"] == "boolean"
    assert json.loads(everything["locations"]["value"]) == ["Shelf A", "Shelf A › Dry box"]
    missing = client.get("/spoolman/api/v1/setting/nothing")
    assert missing.status_code == 404 and missing.json() == {"message": "Setting nothing does not exist."}


def test_moonraker_mainsail_and_fluidd_through_moonrakers_proxy(lab_key, shelf_of_spools):
    """What Moonraker sends with `server: <fablab>/spoolman/<key>`: no headers but JSON's content type."""
    spools = shelf_of_spools["spools"]
    client = Client()
    base = f"/spoolman/{lab_key}/api"
    # Moonraker on (re)connecting checks that its active spool still exists
    assert client.get(f"{base}/v1/spool/{spools[0].pk}").status_code == 200
    assert client.get(f"{base}/v1/spool/999999").status_code == 404  # it forgets the spool
    # Mainsail's and Fluidd's calls, proxied by Moonraker's /server/spoolman/proxy
    for path in ("/v1/info", "/v1/health", "/v1/vendor", "/v1/filament", "/v1/spool", "/v1/setting/currency",
                 f"/v1/spool?allow_archived=false&filament.id={shelf_of_spools['pla'].pk}"):
        response = client.get(f"{base}{path}")
        assert response.status_code == 200, (path, response.content)
        assert response.json() is not None
    # Moonraker's usage report: PUT with a JSON body, a few millimetres at a time
    response = client.put(f"{base}/v1/spool/{spools[0].pk}/use", json.dumps({"use_length": 1.5}),
                          content_type="application/json")
    assert response.status_code == 200
    assert response.json()["used_weight"] == pytest.approx(float(_mm_grams(1.5)))


def test_another_organization_sees_nothing_and_reads_cannot_write(lab_read_key, shelf_of_spools):
    _key, partner_key = make_api_key(PartnerFactory(), scope=ApiKeyScope.WRITE)
    spools = shelf_of_spools["spools"]
    for path in ("/spoolman/api/v1/vendor", "/spoolman/api/v1/setting/currency", "/spoolman/api/v1/filament",
                 f"/spoolman/api/v1/spool/{spools[0].pk}"):
        assert ApiClient(partner_key).get(path).status_code == 403
        assert Client().get(path).status_code == 401
        assert ApiClient(lab_read_key).get(path).status_code == 200
    refused = ApiClient(lab_read_key).put(f"/spoolman/api/v1/spool/{spools[0].pk}/use", {"use_weight": 1},
                                          content_type="application/json")
    assert refused.status_code == 403 and refused.json()["message"]


# --- Creating, changing and deleting through the Spoolman API ----------------------------------


def _send(client, method, path, body=None):
    return getattr(client, method)(f"/spoolman/api/v1{path}", json.dumps(body or {}), content_type="application/json")


def test_vendor_filament_and_spool_are_created_changed_and_deleted_with_the_ledger(lab_key):
    from inventory.models import Filament, Location, Spool, Vendor

    client = ApiClient(lab_key)
    vendor = _send(client, "post", "/vendor", {"name": "Polymaker", "comment": "Shanghai",
                                                "extra": {"website": '"polymaker.com"'}})
    assert vendor.status_code == 200, vendor.content
    vendor = vendor.json()
    assert (vendor["name"], vendor["comment"], vendor["extra"]) == ("Polymaker", "Shanghai",
                                                                    {"website": '"polymaker.com"'})
    filament = _send(client, "post", "/filament", {
        "name": "PolyTerra Teal", "vendor_id": vendor["id"], "material": "PLA", "price": 20.0, "density": 1.31,
        "diameter": 1.75, "weight": 1000, "spool_weight": 140, "color_hex": "008080", "extra": {"nozzle": "210"}})
    assert filament.status_code == 200, filament.content
    filament = filament.json()
    assert (filament["vendor"]["id"], filament["color_hex"], filament["price"], filament["extra"]) == (
        vendor["id"], "008080", 20.0, {"nozzle": "210"})
    stored = Filament.objects.get(pk=filament["id"])
    assert (stored.brand, stored.cost_per_kg, stored.density_g_cm3) == ("Polymaker", Decimal("20.00"),
                                                                        Decimal("1.31"))

    # creating a spool is receiving it; a used_weight given with it is a counted correction
    created = _send(client, "post", "/spool", {"filament_id": filament["id"], "initial_weight": 1000,
                                               "used_weight": 150, "location": "Shelf B", "lot_nr": "L-9",
                                               "extra": {"tag": '"AMS 1"'}})
    assert created.status_code == 200, created.content
    spool = created.json()
    assert (spool["remaining_weight"], spool["used_weight"], spool["location"], spool["lot_nr"]) == (
        850.0, 150.0, "Shelf B", "L-9")
    assert spool["extra"] == {"tag": '"AMS 1"'}
    row = Spool.objects.get(pk=spool["id"])
    assert list(row.movements.order_by("id").values_list("kind", "delta_grams", "source_type")) == [
        ("received", Decimal("1000"), "spoolman"), ("adjusted", Decimal("-150"), "spoolman")]
    assert Location.objects.filter(name="Shelf B").count() == 1

    # changing remaining_weight is a counted correction; the extra fields merge, None clears a key
    changed = _send(client, "patch", f"/spool/{spool['id']}", {"remaining_weight": 700.5, "location": "Shelf B",
                                                               "extra": {"tag": None, "dried": "true"}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["remaining_weight"] == 700.5 and changed.json()["extra"] == {"dried": "true"}
    row.refresh_from_db()
    assert row.remaining_grams == Decimal("700.5") == selectors.spool_ledger_total(spool=row)
    assert row.movements.filter(kind="adjusted").count() == 2 and row.movements.filter(kind="moved").count() == 0

    renamed = _send(client, "patch", f"/vendor/{vendor['id']}", {"name": "Polymaker Inc"})
    assert renamed.json()["name"] == "Polymaker Inc"
    assert Filament.objects.get(pk=filament["id"]).brand == "Polymaker Inc"
    patched = _send(client, "patch", f"/filament/{filament['id']}", {"name": "PolyTerra Sea", "price": 25.0})
    assert (patched.json()["name"], patched.json()["price"]) == ("PolyTerra Sea", 25.0)

    # archiving and bringing back is a flag, as in Spoolman
    archived = _send(client, "patch", f"/spool/{spool['id']}", {"archived": True})
    assert archived.json()["archived"] is True
    restored = _send(client, "patch", f"/spool/{spool['id']}", {"archived": False})
    assert restored.json()["archived"] is False

    # a filament with spools, even archived ones, is refused as Spoolman refuses it (403)
    _send(client, "patch", f"/spool/{spool['id']}", {"archived": True})
    refused = client.delete(f"/spoolman/api/v1/filament/{filament['id']}")
    assert refused.status_code == 403 and "archive" in refused.json()["message"]

    # deleting a spool archives it and hides it from Spoolman clients; the spool and its ledger stay
    deleted = client.delete(f"/spoolman/api/v1/spool/{spool['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"message": "Success!"}
    row.refresh_from_db()
    assert row.archived_at is not None and row.retired_at is not None and row.movements.count() == 3
    assert client.get(f"/spoolman/api/v1/spool/{spool['id']}").status_code == 404
    assert spool["id"] not in [s["id"] for s in client.get("/spoolman/api/v1/spool?allow_archived=true").json()]

    # then the filament goes for Spoolman clients; fablab keeps it for the spool's ledger
    assert client.delete(f"/spoolman/api/v1/filament/{filament['id']}").json() == {"message": "Success!"}
    assert client.get(f"/spoolman/api/v1/filament/{filament['id']}").status_code == 404
    assert Filament.objects.get(pk=filament["id"]).retired_at is not None
    assert Spool.objects.get(pk=spool["id"]).filament_id == filament["id"]

    # a vendor with filaments is deleted as in Spoolman: its filaments stay, without vendor, keeping their brand
    other = _send(client, "post", "/filament", {"vendor_id": vendor["id"], "density": 1.24, "diameter": 1.75}).json()
    assert client.delete(f"/spoolman/api/v1/vendor/{vendor['id']}").json() == {"message": "Success!"}
    assert not Vendor.objects.filter(pk=vendor["id"]).exists()
    assert client.get(f"/spoolman/api/v1/filament/{other['id']}").json()["vendor"] is None
    assert Filament.objects.get(pk=other["id"]).brand == "Polymaker Inc"


@pytest.mark.parametrize("method,path,body,status,message", [
    ("post", "/vendor", {"comment": "no name"}, 422, "needs a name"),
    ("post", "/filament", {"density": 1.24, "diameter": 1.75, "color_hex": "12345"}, 422, "color_hex"),
    ("post", "/filament", {"density": 1.24, "diameter": 1.75, "multi_color_hexes": "FF0000,"}, 422,
     "multi_color"),
    ("post", "/filament", {"density": 1.24, "diameter": 1.75, "multi_color_direction": "coaxial"}, 422,
     "multi_color_hexes"),
    ("post", "/filament", {"density": 1.24, "diameter": 1.75, "multi_color_hexes": "FF0000",
                           "multi_color_direction": "coaxial"}, 422, "two colours"),
    ("post", "/filament", {"name": "x", "vendor_id": 999999, "density": 1.24, "diameter": 1.75}, 404, "999999"),
    ("post", "/filament", {"name": "x", "vendor_id": "{vendor}", "material": "PLA", "density": -1,
                           "diameter": 1.75}, 422, "density"),
    ("post", "/spool", {"initial_weight": 1000}, 422, "filament_id"),
    ("post", "/spool", {"filament_id": 999999}, 404, "999999"),
    ("post", "/spool", {"filament_id": "{filament}", "remaining_weight": 5, "used_weight": 5}, 400, "either"),
    ("post", "/spool", {"filament_id": "{filament}", "initial_weight": 60000}, 422, "more than any spool holds"),
    ("post", "/spool", {"filament_id": "{filament}", "extra": {"k": "not json"}}, 422, "JSON"),
    ("patch", "/spool/{spool}", {"filament_id": "{other}"}, 422, "keeps its filament"),
    ("patch", "/spool/{spool}", {"remaining_weight": -5}, 422, "0 or more"),
    ("patch", "/spool/{spool}", {"remaining_weight": 5, "used_weight": 5}, 400, "either"),
    ("patch", "/spool/999999", {"lot_nr": "x"}, 404, "999999"),
])
def test_bad_changes_are_refused_and_write_nothing(lab_key, orange, method, path, body, status, message):
    from inventory.models import Filament, Spool, SpoolmanExtra, Vendor

    other = FilamentFactory()
    names = {"vendor": Vendor.objects.get(name=orange.filament.brand).pk, "filament": orange.filament.pk,
             "spool": orange.pk, "other": other.pk}
    body = {key: (names[value[1:-1]] if isinstance(value, str) and value[1:-1] in names else value)
            for key, value in body.items()}
    before = (Vendor.objects.count(), Filament.objects.count(), Spool.objects.count(), Movement.objects.count())
    response = _send(ApiClient(lab_key), method, path.format(**names), body)
    assert response.status_code == status, response.content
    assert message in response.json()["message"]
    assert (Vendor.objects.count(), Filament.objects.count(), Spool.objects.count(),
            Movement.objects.count()) == before
    assert not SpoolmanExtra.objects.exists()


def test_every_change_needs_a_write_key_of_the_lab(lab_read_key, orange):
    from inventory.models import Vendor

    _key, partner_key = make_api_key(PartnerFactory(), scope=ApiKeyScope.WRITE)
    vendor = Vendor.objects.get(name=orange.filament.brand)
    changes = [("post", "/vendor", {"name": "X"}), ("patch", f"/vendor/{vendor.pk}", {"name": "X"}),
               ("delete", f"/vendor/{vendor.pk}", None),
               ("post", "/filament", {"name": "X", "vendor_id": vendor.pk, "density": 1.2, "diameter": 1.75}),
               ("patch", f"/filament/{orange.filament.pk}", {"name": "X"}),
               ("delete", f"/filament/{orange.filament.pk}", None),
               ("post", "/spool", {"filament_id": orange.filament.pk}),
               ("patch", f"/spool/{orange.pk}", {"remaining_weight": 1}), ("delete", f"/spool/{orange.pk}", None)]
    for method, path, body in changes:
        assert _send(ApiClient(lab_read_key), method, path, body).status_code == 403, path
        assert _send(ApiClient(partner_key), method, path, body).status_code == 403, path
        assert _send(Client(), method, path, body).status_code == 401, path
    orange.refresh_from_db()
    assert orange.archived_at is None and orange.movements.count() == 1
    assert Vendor.objects.get(pk=vendor.pk).name == orange.filament.brand

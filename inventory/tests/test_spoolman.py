"""The Spoolman subset Moonraker and OctoPrint use, with their requests as they send them."""

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
    ({"use_weight": 5000}, "has 1000.00 g left"),
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

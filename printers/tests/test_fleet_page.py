import json

import pytest
from django.urls import reverse

from fablab.tests.factories import UserFactory
from printers import services
from printers.choices import PrinterState
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def printers():
    bambu = BambuPrinterFactory(name="X1 <one>")
    services.printer_apply_state(printer=bambu, state=NormalisedState(
        state=PrinterState.PRINTING, raw_state="RUNNING", progress_percent=42.0, remaining_seconds=3720, layer=10,
        total_layers=100, nozzle_temp_c=219.6, nozzle_target_c=220, bed_temp_c=60, bed_target_c=60,
        current_file="benchy", filament_slots=[{"slot": 0, "type": "PLA", "colour": "#FF0000", "loaded": True}]))
    PrinterFactory(name="Core One")
    return bambu


def test_fleet_page_and_json_for_staff(admin_client, printers):
    page = admin_client.get(reverse("admin:printers_fleet"))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="fleet-data"' in body and "X1 \\u003Cone\\u003E" in body  # data escaped, rendered by the script
    assert reverse("admin:printers_fleet") in body  # the sidebar links to the page
    data = admin_client.get(reverse("admin:printers_fleet_json")).json()["printers"]
    card = next(p for p in data if p["id"] == printers.pk)
    assert card["state"] == "printing" and card["progress_percent"] == 42.0 and card["remaining_seconds"] == 3720
    assert card["filaments"] == [{"slot": 0, "type": "PLA", "colour": "#FF0000", "loaded": True,
                                  "remaining_percent": None}]
    assert {p["name"] for p in data} == {"X1 <one>", "Core One"}
    assert "host" not in json.dumps(data)


def test_fleet_refused_to_non_staff(client, printers):
    url, json_url = reverse("admin:printers_fleet"), reverse("admin:printers_fleet_json")
    assert client.get(url).status_code == 302  # to the login page
    assert client.get(json_url).status_code == 302
    client.force_login(UserFactory(is_staff=False))
    assert client.get(url).status_code == 302 and client.get(json_url).status_code == 302
    client.force_login(UserFactory(is_staff=True))  # staff without the printers permission
    assert client.get(url).status_code == 403 and client.get(json_url).status_code == 403

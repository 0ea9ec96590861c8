"""Printers added and changed in the admin go through the services; what the live state shows."""

import pytest
from django.urls import reverse

from fablab.tests.factories import UserFactory
from printers import services
from printers.choices import Driver, PrinterState
from printers.models import Printer, PrinterLiveState
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory

pytestmark = pytest.mark.django_db

FORM = {
    "name": "XL", "driver": "prusalink", "model": "XL", "serial": "", "host": "10.0.0.9", "port": "",
    "auth_method": "digest", "secret": "very-secret-1", "nozzle_diameter_mm": "0.40", "bed_x_mm": 360,
    "bed_y_mm": 360, "bed_z_mm": 360, "location": "", "is_active": "on",
    "transitions-TOTAL_FORMS": 0, "transitions-INITIAL_FORMS": 0, "jobs-TOTAL_FORMS": 0, "jobs-INITIAL_FORMS": 0,
}


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def calls(monkeypatch):
    """The services the admin called, by name."""
    seen = []
    for name in ("printer_create", "printer_update"):
        real = getattr(services, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen.append((_name, kwargs))
            return _real(*args, **kwargs)

        monkeypatch.setattr(services, name, spy)
    return seen


def test_a_printer_added_in_the_admin_has_its_live_state_and_encrypted_credentials(admin_client, calls):
    response = admin_client.post(reverse("admin:printers_printer_add"), dict(FORM, name="  XL  "))
    assert response.status_code == 302, response.content.decode()[:3000]
    printer = Printer.objects.get(name="XL")
    assert [name for name, _kwargs in calls] == ["printer_create"]
    assert response.url == reverse("admin:printers_printer_changelist")
    live = PrinterLiveState.objects.get(printer=printer)  # made with the printer, not on first report
    assert live.state == PrinterState.OFFLINE
    assert b"very-secret-1" not in bytes(printer.credentials_ciphertext)
    credentials = services.printer_get_credentials(printer=printer)
    assert (credentials.username, credentials.secret) == ("maker", "very-secret-1")


def test_a_printer_changed_in_the_admin_goes_through_printer_update(admin_client, calls):
    printer = services.printer_create(name="XL", driver=Driver.PRUSALINK, host="10.0.0.9", secret="old-secret")
    calls.clear()
    response = admin_client.post(reverse("admin:printers_printer_change", args=[printer.pk]),
                                 dict(FORM, host="10.0.0.10", secret="new-secret", location="Room 2"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [name for name, _kwargs in calls] == ["printer_update"]
    changed = calls[0][1]
    assert changed["secret"] == "new-secret" and {"host", "location"} <= set(changed) and "name" not in changed
    printer.refresh_from_db()
    assert (printer.host, printer.location) == ("10.0.0.10", "Room 2")
    assert services.printer_get_credentials(printer=printer).secret == "new-secret"
    # An empty password field keeps the stored one.
    admin_client.post(reverse("admin:printers_printer_change", args=[printer.pk]), dict(FORM, host="10.0.0.10",
                                                                                          secret=""))
    assert services.printer_get_credentials(printer=printer).secret == "new-secret"


@pytest.mark.parametrize(("change", "field"), [
    ({"port": "70000"}, "port"),
    ({"host": ""}, "host"),
    ({"name": "Taken"}, "name"),
    ({"secret": "x" * (services.SECRET_MAX_LENGTH + 1)}, "secret"),
    ({"nozzle_diameter_mm": "9"}, "nozzle_diameter_mm"),
    ({"driver": "octoprint"}, "driver"),
])
def test_bad_input_in_the_admin_is_a_form_error_and_creates_nothing(admin_client, change, field):
    services.printer_create(name="Taken", driver=Driver.PRUSALINK, host="10.0.0.1")
    response = admin_client.post(reverse("admin:printers_printer_add"), dict(FORM, **change))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert list(Printer.objects.values_list("name", flat=True)) == ["Taken"]
    assert PrinterLiveState.objects.count() == 1


def test_printer_update_refuses_fields_it_does_not_own():
    printer = services.printer_create(name="XL", driver=Driver.PRUSALINK, host="10.0.0.9")
    from fablab.exceptions import InvalidInput

    with pytest.raises(InvalidInput, match="credentials_ciphertext"):
        services.printer_update(printer=printer, credentials_ciphertext=b"x")
    with pytest.raises(InvalidInput, match="port"):
        services.printer_update(printer=printer, port=0)
    printer.refresh_from_db()
    assert printer.port is None


# --- what the live state shows: nozzle, AMS humidity, the external spool -------------------------------


@pytest.fixture
def p1s():
    printer = BambuPrinterFactory(name="P1S")
    services.printer_apply_state(printer=printer, state=NormalisedState(
        state=PrinterState.IDLE, raw_state="IDLE", nozzle_type="stainless_steel", nozzle_diameter_mm=0.6,
        filament_slots=[{"slot": 0, "ams": 0, "type": "PA-CF", "colour": "#000000", "remaining_percent": 80,
                         "loaded": False},
                        {"slot": 254, "ams": None, "type": "PETG", "colour": "#BCBCBC", "remaining_percent": None,
                         "loaded": True}],
        ams_units=[{"id": 0, "humidity_level": 5, "humidity_percent": 63, "temp_c": 27.5, "wet": True},
                   {"id": 1, "humidity_level": 2, "humidity_percent": None, "temp_c": None, "wet": False}]))
    return printer


def test_the_fleet_card_shows_nozzle_ams_and_warnings(admin_client, p1s):
    card = next(c for c in admin_client.get(reverse("admin:printers_fleet_json")).json()["printers"]
                if c["id"] == p1s.pk)
    assert (card["nozzle_type"], card["nozzle_diameter_mm"]) == ("stainless_steel", 0.6)
    assert card["ams"][0] == {"id": 0, "humidity_level": 5, "humidity_percent": 63, "temp_c": 27.5, "wet": True}
    assert [f["remaining_percent"] for f in card["filaments"]] == [80, None]
    warnings = " ".join(card["warnings"])
    assert "AMS 0 is wet" in warnings and "AMS 1" not in warnings
    assert "PA-CF" in warnings and "hardened steel" in warnings
    assert "0.6 mm" in warnings and "0.4 mm" in warnings  # reported nozzle differs from the settings
    page = admin_client.get(reverse("admin:printers_fleet")).content.decode()
    assert "remaining unknown" in page and "data-warning" in page  # rendered by the page's script


def test_the_printer_page_shows_nozzle_ams_warnings_and_an_unknown_external_spool(admin_client, p1s):
    page = admin_client.get(reverse("admin:printers_printer_change", args=[p1s.pk])).content.decode()
    panel = page.split('id="printer-warnings"')[1].split("</ul>")[0]
    assert "AMS 0 is wet" in panel and "PA-CF" in panel
    assert "0.6 mm stainless steel" in page
    assert "AMS 0: humidity 5/5 (63 %) · 28 °C · wet" in page and "AMS 1: humidity 2/5" in page
    assert "254: PETG #BCBCBC · remaining unknown" in page and "0: PA-CF #000000 · 80 %" in page
    assert "254: PETG #BCBCBC · 0 %" not in page


def test_the_api_shows_nozzle_and_ams(api, p1s):
    services.printer_update(printer=p1s, shared_with_partners=True)
    body = api.get(f"/api/v1/printers/{p1s.pk}").json()
    assert (body["nozzle_type"], body["reported_nozzle_diameter_mm"], body["nozzle_takes_abrasive"]) == (
        "stainless_steel", 0.6, False)
    assert body["ams"][0] == {"id": 0, "humidity_level": 5, "humidity_percent": 63, "temp_c": 27.5, "wet": True}
    assert body["nozzle_diameter_mm"] == 0.4  # the printer's settings, as before

import pytest
from django.urls import reverse

from printers import services
from printers.choices import Driver, PrinterState
from printers.models import Printer, PrinterCommand, PrinterLiveState
from printers.state import NormalisedState
from printers.tests.factories import PrinterFactory

pytestmark = pytest.mark.django_db


def test_partners_see_only_shared_printers_and_never_secrets(api):
    shared = services.printer_create(name="Shared", driver=Driver.PRUSALINK, host="10.1.2.3", secret="pw-123456",
                                     shared_with_partners=True)
    hidden = PrinterFactory(name="Hidden")
    services.printer_apply_state(printer=shared, state=NormalisedState(state="printing", job_key="4",
                                                                       progress_percent=12.5))
    body = api.get("/api/v1/printers").json()
    assert [p["name"] for p in body["items"]] == ["Shared"]
    assert body["items"][0]["state"] == "printing" and body["items"][0]["progress_percent"] == 12.5
    text = str(body) + api.get(f"/api/v1/printers/{shared.pk}").content.decode()
    assert "10.1.2.3" not in text and "pw-123456" not in text and "credentials" not in text
    assert api.get(f"/api/v1/printers/{hidden.pk}").status_code == 404
    assert api.get(f"/api/v1/printers/{hidden.pk}/jobs").status_code == 404
    jobs = api.get(f"/api/v1/printers/{shared.pk}/jobs").json()
    assert jobs["count"] == 1 and jobs["items"][0]["outcome"] == "running"
    transitions = api.get(f"/api/v1/printers/{shared.pk}/transitions").json()
    assert [t["to_state"] for t in transitions["items"]] == ["printing"]


def test_api_needs_a_key(client):
    assert client.get("/api/v1/printers").status_code == 401


def test_admin_creates_a_printer_with_encrypted_credentials(admin_client):
    response = admin_client.post(reverse("admin:printers_printer_add"), {
        "name": "XL", "driver": "prusalink", "model": "XL", "serial": "", "host": "10.0.0.9", "port": "",
        "auth_method": "digest", "secret": "very-secret-1", "nozzle_diameter_mm": "0.40", "bed_x_mm": 360,
        "bed_y_mm": 360, "bed_z_mm": 360, "location": "", "is_active": "on",
        "transitions-TOTAL_FORMS": 0, "transitions-INITIAL_FORMS": 0,
        "jobs-TOTAL_FORMS": 0, "jobs-INITIAL_FORMS": 0,
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    printer = Printer.objects.get(name="XL")
    assert services.printer_get_credentials(printer=printer).secret == "very-secret-1"
    page = admin_client.get(reverse("admin:printers_printer_change", args=[printer.pk])).content.decode()
    assert "very-secret-1" not in page
    assert admin_client.get(reverse("admin:printers_printer_changelist")).status_code == 200


def test_admin_stop_asks_for_confirmation_and_reports_errors(admin_client):
    printer = PrinterFactory()
    url = reverse("admin:printers_printer_changelist")
    response = admin_client.post(url, {"action": "stop_printers", "_selected_action": [printer.pk]})
    assert response.status_code == 200 and "Yes, send it" in response.content.decode()
    response = admin_client.post(url, {"action": "stop_printers", "_selected_action": [printer.pk],
                                           "confirm": "yes"}, follow=True)
    assert f"{printer.name} is offline." in " ".join(str(m) for m in response.context["messages"])
    services.printer_apply_state(printer=printer, state=NormalisedState(state=PrinterState.IDLE))
    response = admin_client.post(url, {"action": "stop_printers", "_selected_action": [printer.pk],
                                           "confirm": "yes"}, follow=True)
    assert "cannot stop while idle" in " ".join(str(m) for m in response.context["messages"])
    assert not PrinterCommand.objects.exists()
    services.printer_apply_state(printer=printer, state=NormalisedState(state=PrinterState.PRINTING, job_key="5"))
    form = admin_client.post(url, {"action": "stop_printers", "_selected_action": [printer.pk]})
    key = form.content.decode().split('name="idempotency_key" value="')[1].split('"')[0]
    for _twice in range(2):  # the confirmation sent twice: one command
        response = admin_client.post(url, {"action": "stop_printers", "_selected_action": [printer.pk],
                                               "confirm": "yes", "idempotency_key": key}, follow=True)
        assert "command sent, waiting for the printer" in " ".join(str(m) for m in response.context["messages"])
    assert PrinterCommand.objects.get().action == "stop"


def test_a_printer_without_a_live_state_shows_as_offline(api):
    printer = PrinterFactory(name="New", shared_with_partners=True)
    PrinterLiveState.objects.filter(printer=printer).delete()
    body = api.get(f"/api/v1/printers/{printer.pk}").json()
    assert {key: body[key] for key in ("state", "online", "progress_percent", "remaining_seconds", "current_file",
                                       "last_report_at", "nozzle_type", "reported_nozzle_diameter_mm",
                                       "nozzle_takes_abrasive", "ams")} == {
        "state": "offline", "online": False, "progress_percent": None, "remaining_seconds": None, "current_file": "",
        "last_report_at": None, "nozzle_type": "", "reported_nozzle_diameter_mm": None,
        "nozzle_takes_abrasive": None, "ams": []}

"""Printers added and changed in the admin go through the services."""

import pytest
from django.urls import reverse

from fablab.tests.factories import UserFactory
from printers import services
from printers.choices import Driver, PrinterState
from printers.models import Printer, PrinterLiveState

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


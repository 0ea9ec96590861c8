"""Printer hosts on the Spoolman API: their own key kind, keys in URLs kept out of the logs, the allow-list."""

import asyncio
import io
import ipaddress
import json
import logging

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from fablab.choices import ApiKeyScope
from fablab.exceptions import InvalidInput
from fablab.forms import ApiKeyForm
from fablab.tests.factories import OrganizationFactory, PartnerFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from inventory.models import Filament, Movement, Spool, Vendor
from inventory.tests.factories import FilamentFactory, spool

pytestmark = pytest.mark.django_db

READS = ["/spool", "/spool/{spool}", "/filament", "/filament/{filament}", "/vendor", "/vendor/{vendor}",
         "/setting/", "/setting/currency", "/info", "/health"]


@pytest.fixture
def host_key(lab):
    return make_api_key(lab, scope=ApiKeyScope.PRINTER_HOST, name="Voron 2.4 Moonraker")


@pytest.fixture
def stock():
    filament = FilamentFactory()
    return {"vendor": Vendor.objects.get(name=filament.brand), "filament": filament,
            "spool": spool(filament, grams="1000")}


def _url(path: str, stock) -> str:
    return path.format(spool=stock["spool"].pk, filament=stock["filament"].pk, vendor=stock["vendor"].pk)


def _counts() -> tuple:
    return Vendor.objects.count(), Filament.objects.count(), Spool.objects.count(), Movement.objects.count()


# --- The key kind -------------------------------------------------------------------------------


def test_a_printer_host_key_reads_everything_a_spoolman_client_reads(host_key, stock):
    _key, raw = host_key
    for path in READS:
        in_url = Client().get(f"/spoolman/{raw}/api/v1{_url(path, stock)}")
        in_header = ApiClient(raw).get(f"/spoolman/api/v1{_url(path, stock)}")
        assert in_url.status_code == 200, (path, in_url.content[:200])
        assert in_header.status_code == 200, (path, in_header.content[:200])


def test_a_printer_host_key_reports_use_into_the_ledger(host_key, stock):
    key, raw = host_key
    response = Client().put(f"/spoolman/{raw}/api/v1/spool/{stock['spool'].pk}/use", {"use_weight": 2.5},
                            content_type="application/json")
    assert response.status_code == 200 and response.json()["remaining_weight"] == 997.5
    movement = Movement.objects.get(spool=stock["spool"], kind="used")
    assert movement.source_id == f"fl_{key.prefix}"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/vendor", {"name": "Polymaker"}),
    ("patch", "/vendor/{vendor}", {"name": "Renamed"}),
    ("delete", "/vendor/{vendor}", None),
    ("post", "/filament", {"name": "PLA", "vendor_id": 0}),
    ("patch", "/filament/{filament}", {"name": "Renamed"}),
    ("delete", "/filament/{filament}", None),
    ("post", "/spool", {"filament_id": 0}),
    ("patch", "/spool/{spool}", {"remaining_weight": 1}),
    ("delete", "/spool/{spool}", None),
])
def test_a_printer_host_key_changes_nothing_but_use(host_key, stock, method, path, body):
    _key, raw = host_key
    before = _counts()
    response = getattr(Client(), method)(f"/spoolman/{raw}/api/v1{_url(path, stock)}", json.dumps(body or {}),
                                         content_type="application/json")
    assert response.status_code == 403
    assert "printer host" in response.json()["message"]
    assert _counts() == before
    stock["spool"].refresh_from_db()
    assert stock["spool"].remaining_grams == 1000 and stock["spool"].archived_at is None


def test_a_printer_host_key_is_refused_by_the_rest_api_and_the_octoprint_door(host_key):
    _key, raw = host_key
    for path in ("/api/v1/inventory/spools", "/api/v1/inventory/filaments", "/api/v1/organization"):
        response = ApiClient(raw).get(path)
        assert response.status_code in (403, 404), path  # 404: a path this API does not have
        if response.status_code == 403:
            assert_problem(response, 403)
    assert ApiClient(raw).get("/api/version").status_code == 403


def test_a_printer_host_key_is_only_made_for_the_lab(lab):
    with pytest.raises(InvalidInput, match="lab"):
        make_api_key(PartnerFactory(), scope=ApiKeyScope.PRINTER_HOST)
    key, _raw = make_api_key(lab, scope=ApiKeyScope.PRINTER_HOST)
    assert key.scope == ApiKeyScope.PRINTER_HOST and not key.allows(ApiKeyScope.READ)
    # The portal offers the kind only to the lab's own organization.
    offered = dict(ApiKeyForm(organization=PartnerFactory()).fields["scope"].choices)
    assert ApiKeyScope.PRINTER_HOST not in offered and ApiKeyScope.WRITE in offered
    assert ApiKeyScope.PRINTER_HOST in dict(ApiKeyForm(organization=lab).fields["scope"].choices)


def test_staff_make_a_printer_host_key_in_the_admin(admin_client, lab):
    response = admin_client.post("/admin/fablab/apikey/add/", {
        "organization": lab.pk, "name": "Moonraker", "scope": ApiKeyScope.PRINTER_HOST})
    assert response.status_code == 302, response.content[:500]
    assert lab.api_keys.get().scope == ApiKeyScope.PRINTER_HOST
    partner = PartnerFactory()
    response = admin_client.post("/admin/fablab/apikey/add/", {
        "organization": partner.pk, "name": "Moonraker", "scope": ApiKeyScope.PRINTER_HOST})
    assert response.status_code == 200 and not partner.api_keys.exists()  # the form shows why


# --- The WebSocket ------------------------------------------------------------------------------


async def _connect(path: str, client=("127.0.0.1", 50000)):
    from fablab.asgi import application

    scope = {"type": "websocket", "path": path, "headers": [], "query_string": b"", "subprotocols": [],
             "client": client}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    return communicator, await communicator.receive_output(timeout=5)


async def _accepted(path: str, client=("127.0.0.1", 50000)) -> bool:
    communicator, answer = await _connect(path, client)
    if answer == {"type": "websocket.accept"}:
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=5)
        return True
    return False


@pytest.mark.django_db(transaction=True)
def test_the_websocket_takes_a_printer_host_key_and_allowed_hosts(host_key, settings):
    _key, raw = host_key
    assert asyncio.run(_accepted(f"/spoolman/{raw}/api/v1/spool"))
    assert not asyncio.run(_accepted("/spoolman/api/v1/spool"))  # no key, no allow-list
    settings.SPOOLMAN_ALLOW_HOSTS = [ipaddress.ip_network("192.168.1.0/24")]
    assert asyncio.run(_accepted("/spoolman/api/v1/spool", ("192.168.1.20", 40000)))
    assert not asyncio.run(_accepted("/spoolman/api/v1/spool", ("10.0.0.5", 40000)))


# --- Keys in URLs stay out of the logs ----------------------------------------------------------


@pytest.fixture
def logged():
    """Everything the request and server loggers write, through the project's own handlers' filter."""
    from fablab.logs import RedactApiKeys

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("django.request", "django.server", "uvicorn.access")]
    for logger in loggers:
        logger.addHandler(handler)
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)
    assert any(isinstance(f, RedactApiKeys) for f in logging.getLogger("uvicorn.access").filters)


def test_a_key_in_the_url_is_redacted_from_request_warnings(host_key, stock, logged):
    key, raw = host_key
    assert Client().get(f"/spoolman/{raw}/api/v1/spool/999999").status_code == 404
    assert Client().delete(f"/spoolman/{raw}/api/v1/spool/{stock['spool'].pk}").status_code == 403
    assert Client().get(f"/spoolman/{raw}/nowhere").status_code == 404
    output = logged.getvalue()
    assert "Not Found: /spoolman/" in output and "Forbidden: /spoolman/" in output
    assert raw not in output and raw.split("_")[2] not in output
    assert f"fl_{key.prefix}_[redacted]" in output  # which key it was stays visible


def test_a_key_in_the_url_is_redacted_from_access_log_lines(host_key, logged):
    _key, raw = host_key
    secret = raw.split("_")[2]
    # runserver's line and uvicorn's, with the arguments each server logs them with
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /spoolman/{raw}/api/v1/spool HTTP/1.1", 200, 2)
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "192.168.1.20:40000", "PUT",
                                             f"/spoolman/{raw}/api/v1/spool/1/use", "1.1", 200)
    output = logged.getvalue()
    assert "GET /spoolman/fl_" in output and "PUT /spoolman/fl_" in output and "200" in output
    assert secret not in output


def test_the_project_handlers_redact_whatever_logger_writes(host_key):
    from django.conf import settings

    _key, raw = host_key
    for name in ("console", "server"):
        assert "redact_api_keys" in settings.LOGGING["handlers"][name]["filters"]
    record = logging.LogRecord("anything", logging.WARNING, __file__, 1, f"called {raw}: %s",
                               (f"/spoolman/{raw}/api/v1/spool",), None)
    from fablab.logs import RedactApiKeys

    assert RedactApiKeys().filter(record) and raw.split("_")[2] not in record.getMessage()


# --- The allow-list -----------------------------------------------------------------------------


def test_without_the_allow_list_a_key_is_needed(stock, settings):
    assert settings.SPOOLMAN_ALLOW_HOSTS == []
    response = Client().get("/spoolman/api/v1/spool")
    assert response.status_code == 401 and response.json()["message"]


def test_allowed_hosts_read_and_report_use_without_a_key_and_nothing_more(stock, settings):
    settings.SPOOLMAN_ALLOW_HOSTS = [ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("::1/128")]
    host = Client(REMOTE_ADDR="192.168.1.20")
    for path in READS:
        assert host.get(f"/spoolman/api/v1{_url(path, stock)}").status_code == 200, path
    response = host.put(f"/spoolman/api/v1/spool/{stock['spool'].pk}/use", {"use_weight": 1.5},
                        content_type="application/json")
    assert response.status_code == 200 and response.json()["remaining_weight"] == 998.5
    assert Movement.objects.get(spool=stock["spool"], kind="used").source_id == "host 192.168.1.20"
    before = _counts()
    response = host.post("/spoolman/api/v1/vendor", {"name": "Polymaker"}, content_type="application/json")
    assert response.status_code == 401 and response.json()["message"]
    assert host.delete(f"/spoolman/api/v1/spool/{stock['spool'].pk}").status_code == 401
    assert _counts() == before
    # Elsewhere: not listed, or not the Spoolman API
    assert Client(REMOTE_ADDR="10.0.0.5").get("/spoolman/api/v1/spool").status_code == 401
    assert_problem(host.get("/api/v1/inventory/spools"), 401)


def test_the_allow_list_follows_trusted_proxies_only(stock, settings):
    settings.SPOOLMAN_ALLOW_HOSTS = [ipaddress.ip_network("192.168.1.20")]
    forged = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="192.168.1.20")
    assert forged.get("/spoolman/api/v1/spool").status_code == 401  # no proxy is trusted by default


def test_a_bad_allow_list_stops_the_start(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from fablab import settings as project_settings

    monkeypatch.setenv("SPOOLMAN_ALLOW_HOSTS", "192.168.1.0/24, 10.0.0.300")
    with pytest.raises(ImproperlyConfigured, match="10.0.0.300"):
        project_settings._networks("SPOOLMAN_ALLOW_HOSTS")
    monkeypatch.setenv("SPOOLMAN_ALLOW_HOSTS", " 192.168.1.0/24 , fd00::/8,")
    assert [str(n) for n in project_settings._networks("SPOOLMAN_ALLOW_HOSTS")] == ["192.168.1.0/24", "fd00::/8"]


def test_keys_of_other_kinds_still_work_as_before(lab, stock):
    _key, partner = make_api_key(OrganizationFactory(), scope=ApiKeyScope.WRITE)
    assert ApiClient(partner).get("/spoolman/api/v1/spool").status_code == 403
    _key, read = make_api_key(lab, scope=ApiKeyScope.READ)
    assert ApiClient(read).get("/spoolman/api/v1/spool").status_code == 200
    assert ApiClient(read).put(f"/spoolman/api/v1/spool/{stock['spool'].pk}/use", {"use_weight": 1},
                               content_type="application/json").status_code == 403

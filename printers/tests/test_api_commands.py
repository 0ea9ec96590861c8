"""Printer commands through the partner API: write scope, tenant rules, idempotency, problems."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.choices import ApiKeyScope
from fablab.tests.factories import make_api_key
from fablab.tests.helpers import ApiClient
from printers import services, tasks
from printers.choices import CommandStatus, Driver, PrinterState
from printers.models import PrinterCommand
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

pytestmark = pytest.mark.django_db

ACCESS_CODE = "bambu-code-77"
PASSWORD = "Xy7-sim-secret"


def printing(printer, **extra):
    services.printer_apply_state(printer=printer, state=NormalisedState(
        state=PrinterState.PRINTING, raw_state="RUNNING", job_key="7", progress_percent=30.0,
        current_file="benchy.3mf", **extra))
    return printer


@pytest.fixture
def bambu():
    printer = BambuPrinterFactory(name="P1S shared", host="10.9.8.7", shared_with_partners=True)
    services.printer_set_credentials(printer=printer, secret=ACCESS_CODE)
    return printing(printer)


def post(api, printer, body, key="evt-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post(f"/api/v1/printers/{printer.pk}/commands", data=json.dumps(body),
                    content_type="application/json", headers=headers)


def test_pause_is_queued_for_the_listener_and_polled(api, partner, bambu):
    response = post(api, bambu, {"action": "pause"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["action"] == "pause" and body["status"] == "pending" and body["printer_id"] == bambu.pk
    command = PrinterCommand.objects.get()
    assert command.pk == body["id"] and command.action == "pause"
    url = f"/api/v1/printers/{bambu.pk}/commands/{command.pk}"
    assert api.get(url).json()["status"] == "pending"
    services.command_mark_sent(command=command, sequence_id="42")  # what run_printers does
    assert api.get(url).json()["status"] == "sent"
    services.command_finish(command=command, ok=True)
    polled = api.get(url).json()
    assert polled["status"] == "succeeded" and polled["finished_at"] is not None
    listing = api.get(f"/api/v1/printers/{bambu.pk}/commands").json()
    assert [c["id"] for c in listing["items"]] == [command.pk]


def test_a_command_nobody_takes_expires(api, bambu, settings):
    settings.BAMBU_COMMAND_TIMEOUT_SECONDS = 5
    command_id = post(api, bambu, {"action": "pause"}).json()["id"]
    url = f"/api/v1/printers/{bambu.pk}/commands/{command_id}"
    assert api.get(url).json()["status"] == "pending"
    PrinterCommand.objects.filter(pk=command_id).update(created_at=timezone.now() - timedelta(seconds=9))
    assert api.get(url).json()["status"] == "pending"  # reading writes nothing ...
    tasks.expire_printer_commands()  # ... the schedule expires what nobody took
    polled = api.get(url).json()
    assert polled["status"] == "expired" and "no printer listener" in polled["error"]
    assert api.get(f"/api/v1/printers/{bambu.pk}/commands").json()["items"][0]["status"] == "expired"


def test_light_switch_and_idempotent_replay(api, bambu):
    first = post(api, bambu, {"action": "light", "on": False}, key="light-off-1")
    again = post(api, bambu, {"action": "light", "on": False}, key="light-off-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and first.json()["light_on"] is False
    assert PrinterCommand.objects.count() == 1
    assert PrinterCommand.objects.get().params["mode"] == "off"
    reused = post(api, bambu, {"action": "light", "on": True}, key="light-off-1")
    assert reused.status_code == 409 and "Idempotency-Key" in reused.json()["detail"]
    assert PrinterCommand.objects.count() == 1


def test_read_only_key_is_refused(partner, bambu):
    _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
    reader = ApiClient(raw)
    response = post(reader, bambu, {"action": "stop"})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "write scope" in response.json()["detail"]
    assert not PrinterCommand.objects.exists()
    assert reader.get(f"/api/v1/printers/{bambu.pk}").status_code == 200  # reading is still allowed


def test_unshared_printer_and_other_partners_commands_are_not_found(api, other_partner, bambu):
    hidden = printing(BambuPrinterFactory(name="Lab only"))
    response = post(api, hidden, {"action": "pause"})
    assert response.status_code == 404 and response.json()["status"] == 404
    assert post(api, PrinterFactory.build(pk=999_999), {"action": "pause"}).status_code == 404
    assert not PrinterCommand.objects.exists()

    _key, raw = make_api_key(other_partner, scope=ApiKeyScope.WRITE)
    other = ApiClient(raw)
    theirs = post(other, bambu, {"action": "pause"}, key="same-key").json()
    mine = post(api, bambu, {"action": "stop"}, key="same-key").json()  # keys are per organization
    assert theirs["id"] != mine["id"]
    assert api.get(f"/api/v1/printers/{bambu.pk}/commands/{theirs['id']}").status_code == 404
    assert [c["id"] for c in api.get(f"/api/v1/printers/{bambu.pk}/commands").json()["items"]] == [mine["id"]]
    staff_command = PrinterCommand.objects.create(printer=bambu, action="pause")  # from the admin
    assert api.get(f"/api/v1/printers/{bambu.pk}/commands/{staff_command.pk}").status_code == 404
    assert api.get(f"/api/v1/printers/{hidden.pk}/commands/{mine['id']}").status_code == 404


def test_command_not_allowed_in_this_state_is_a_conflict(api, bambu):
    response = post(api, bambu, {"action": "resume"})
    assert response.status_code == 409
    assert response.json()["detail"] == "P1S shared cannot resume while printing."
    services.printer_apply_state(printer=bambu, state=NormalisedState(state=PrinterState.IDLE))
    assert "cannot pause while idle" in post(api, bambu, {"action": "pause"}, key="k2").json()["detail"]
    services.printer_apply_state(printer=bambu, state=NormalisedState(state=PrinterState.OFFLINE))
    assert post(api, bambu, {"action": "light", "on": True}, key="k3").json()["detail"] == "P1S shared is offline."
    assert not PrinterCommand.objects.exists()


@pytest.mark.parametrize(("body", "where"), [
    ({"action": "explode"}, "action"),
    ({}, "action"),
    ({"action": "light"}, "light needs on"),
    ({"action": "pause", "on": True}, "only light takes on"),
    ({"action": "pause", "force": True}, "force"),
    ({"action": "light", "on": "maybe"}, "on"),
    (["pause"], "body"),
])
def test_malformed_payloads_are_422(api, bambu, body, where):
    response = post(api, bambu, body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert where in response.json()["detail"]
    assert not PrinterCommand.objects.exists()


def test_not_json_and_missing_idempotency_key_are_422(api, bambu):
    broken = api.post(f"/api/v1/printers/{bambu.pk}/commands", data="{pause", content_type="application/json",
                      headers={"Idempotency-Key": "x"})
    assert broken.status_code in (400, 422) and broken["Content-Type"] == "application/problem+json"
    missing = post(api, bambu, {"action": "pause"}, key=None)
    assert missing.status_code == 422 and "Idempotency-Key" in missing.json()["detail"]
    too_long = post(api, bambu, {"action": "pause"}, key="k" * 201)
    assert too_long.status_code == 422
    assert not PrinterCommand.objects.exists()


def test_no_address_or_credentials_in_any_answer(api, bambu):
    texts = [post(api, bambu, {"action": "pause"}).content.decode()]
    command = PrinterCommand.objects.get()
    services.command_finish(command=command, ok=False, error="could not reach 10.9.8.7:8883")
    texts += [api.get(f"/api/v1/printers/{bambu.pk}/commands/{command.pk}").content.decode(),
              api.get(f"/api/v1/printers/{bambu.pk}/commands").content.decode(),
              api.get(f"/api/v1/printers/{bambu.pk}").content.decode()]
    assert "could not reach P1S shared:8883" in texts[1]
    for text in texts:
        assert "10.9.8.7" not in text and ACCESS_CODE not in text and "idempotency" not in text.lower()
        assert "idempotency" not in text.lower() and bambu.serial not in text


def test_without_a_key_401(client, bambu):
    response = client.post(f"/api/v1/printers/{bambu.pk}/commands", data='{"action": "pause"}',
                           content_type="application/json")
    assert response.status_code == 401


@pytest.fixture
def prusa_sim():
    with PrusaLinkSimulator(password=PASSWORD) as simulator:
        simulator.add_file("BENCHY~1.BGC", "benchy.bgcode", print_seconds=600)
        yield simulator


def test_prusalink_command_is_carried_out_by_a_task(api, prusa_sim, settings, run_tasks):
    settings.PRINTER_HTTP_TIMEOUT_SECONDS = 1
    printer = services.printer_create(name="Core One", driver=Driver.PRUSALINK, host=prusa_sim.host,
                                      port=prusa_sim.port, secret=PASSWORD, shared_with_partners=True)
    prusa_sim.start_print("BENCHY~1.BGC")
    services.printer_poll(printer=printer)
    with run_tasks():
        body = post(api, printer, {"action": "pause"}).json()
        assert body["status"] == "pending"  # the answer comes before the printer is asked
        assert prusa_sim.sim.printer_state == "PRINTING"
    assert api.get(f"/api/v1/printers/{printer.pk}/commands/{body['id']}").json()["status"] == "succeeded"
    assert prusa_sim.sim.printer_state == "PAUSED"
    sent = [path for method, path, status in prusa_sim.requests if method == "PUT" and status != 401]
    assert sent == [f"/api/v1/job/{prusa_sim.sim.job.id}/pause"]  # 401: the digest challenge before it
    assert api.get(f"/api/v1/printers/{printer.pk}").json()["state"] == "paused"
    assert "have a light" in post(api, printer, {"action": "light", "on": True}, key="l").json()["detail"]
    prusa_sim.power_off()
    with run_tasks():
        command_id = post(api, printer, {"action": "resume"}, key="r").json()["id"]
    failed = api.get(f"/api/v1/printers/{printer.pk}/commands/{command_id}").json()
    assert failed["status"] == CommandStatus.FAILED and prusa_sim.host not in failed["error"]


def test_a_command_is_audited_once_with_the_key_and_address(partner, bambu):
    from fablab.choices import AuditAction
    from fablab.models import AuditEntry

    key, raw = make_api_key(partner, scope=ApiKeyScope.WRITE)
    client = ApiClient(raw, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="shop-sync/2")
    assert post(client, bambu, {"action": "pause"}, key="audit-1").status_code == 202
    assert post(client, bambu, {"action": "pause"}, key="audit-1").status_code == 202  # a replay sends nothing
    entry = AuditEntry.objects.get(action=AuditAction.PRINTER_COMMAND)
    command = PrinterCommand.objects.get()
    assert (entry.api_key, entry.actor, entry.organization) == (key, None, partner)
    assert (entry.target_type, entry.target_id, entry.target_text) == ("printer", str(bambu.pk), "P1S shared")
    assert entry.extra == {"command": command.pk, "action": "pause", "params": {}}
    assert (entry.ip_address, entry.user_agent) == ("203.0.113.9", "shop-sync/2")
    assert entry.actor_label == f"{key.name} (fl_{key.prefix}_…)"


def test_a_refused_command_is_not_audited(api, bambu):
    from fablab.models import AuditEntry

    assert post(api, bambu, {"action": "resume"}).status_code == 409  # it is printing, not paused
    assert not AuditEntry.objects.filter(action="printer_command").exists()

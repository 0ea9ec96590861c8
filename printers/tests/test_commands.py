"""One command path for every printer, and files uploaded and started, over the simulators on loopback.

A command is requested (admin, API, services) and the request returns at once; the printer listener
(Bambu, over MQTT) or a task (PrusaLink, over HTTP) carries it out and records the printer's answer;
the same idempotency key makes one command; a schedule expires what nobody took. Uploading goes over
FTPS to a fake Bambu SD card (which the fake printer then prints from) and over HTTP to a fake
PrusaLink USB stick.
"""

import io
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from fablab.exceptions import InvalidInput
from fablab.schedules import SCHEDULES
from fablab.tests.factories import UserFactory
from printers import services, tasks
from printers.choices import CommandStatus, Driver, PrinterState
from printers.exceptions import PrinterConflict
from printers.files import printer_files_list
from printers.models import PrinterCommand
from printers.simulators.ftps import BambuFTPSSimulator
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.state import NormalisedState
from printers.tests.file_fixtures import BAMBU_FILE, PRUSA_FILE, corpus
from printers.tests.mqtt import ACCESS_CODE, SERIAL, answered, live, make_sim, start_long_print, state_is, step_until

PASSWORD = "cmd-sim-secret"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PRINTER_HTTP_TIMEOUT_SECONDS = 2
    settings.PRINTER_FILES_TIMEOUT_SECONDS = 5
    settings.PRINTER_FILES_LOCK_WAIT_SECONDS = 0
    cache.clear()


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def prusa_sim():
    with PrusaLinkSimulator(password=PASSWORD) as simulator:
        simulator.add_file("BENCHY~1.BGC", "benchy.bgcode", b"GCDE" + bytes(200), print_seconds=600)
        yield simulator


@pytest.fixture
def prusa(db, prusa_sim):
    return services.printer_create(name="Core One", driver=Driver.PRUSALINK, host=prusa_sim.host,
                                   port=prusa_sim.port, secret=PASSWORD)


def command_url(printer, command: str) -> str:
    return reverse("admin:printers_printer_command", args=[printer.pk, command])


def confirmation_key(admin_client, printer, command: str) -> str:
    """The idempotency key the confirmation page puts into its form."""
    page = admin_client.get(command_url(printer, command)).content.decode()
    return page.split('name="idempotency_key" value="')[1].split('"')[0]


def commands_panel(admin_client, printer) -> str:
    page = admin_client.get(reverse("admin:printers_printer_change", args=[printer.pk])).content.decode()
    return page.split('id="printer-commands"')[1].split("</section>")[0]


def sent_to(sim, command: str) -> list[dict]:
    return [body for request in sim.received for body in request.values()
            if isinstance(body, dict) and body.get("command") == command]


# --- the admin: requested at once, carried out in the background --------------------------------------


def test_admin_pause_of_a_bambu_printer_returns_at_once_and_ends_acknowledged(admin_client, bambu_printer,
                                                                              listener, sim):
    start_long_print(listener, bambu_printer, sim)
    key = confirmation_key(admin_client, bambu_printer, "pause")

    response = admin_client.post(command_url(bambu_printer, "pause"), {"confirm": "yes", "idempotency_key": key})
    assert response.status_code == 302  # back to the printer's page without waiting for anyone
    command = PrinterCommand.objects.get()
    assert command.status == CommandStatus.PENDING and not sent_to(sim, "pause")
    assert 'data-status="pending"' in commands_panel(admin_client, bambu_printer)

    command = step_until(listener, answered(command), what="the listener sends it and the printer answers")
    assert command.status == CommandStatus.SUCCEEDED and command.sequence_id
    assert [body["sequence_id"] for body in sent_to(sim, "pause")] == [command.sequence_id]
    step_until(listener, state_is(bambu_printer, PrinterState.PAUSED))
    panel = commands_panel(admin_client, bambu_printer)
    assert 'data-status="succeeded"' in panel and "Waiting for the printer" not in panel


def test_admin_pause_of_a_prusalink_printer_returns_at_once_and_ends_acknowledged(admin_client, prusa, prusa_sim,
                                                                                  run_tasks):
    job = prusa_sim.start_print("BENCHY~1.BGC")
    services.printer_poll(printer=prusa)
    key = confirmation_key(admin_client, prusa, "pause")

    with run_tasks() as queued:
        response = admin_client.post(command_url(prusa, "pause"), {"confirm": "yes", "idempotency_key": key})
        assert response.status_code == 302
        assert PrinterCommand.objects.get().status == CommandStatus.PENDING  # the answer came first ...
        assert prusa_sim.sim.printer_state == "PRINTING"
    assert len(queued) == 1  # ... then one task carried it out through the driver

    command = PrinterCommand.objects.get()
    assert command.status == CommandStatus.SUCCEEDED and command.sequence_id == str(job.id)
    assert prusa_sim.sim.printer_state == "PAUSED"
    assert live(prusa).state == PrinterState.PAUSED  # polled right after the command
    assert 'data-status="succeeded"' in commands_panel(admin_client, prusa)


def test_a_refusing_prusalink_printer_is_shown_on_its_page(admin_client, prusa, prusa_sim, run_tasks):
    prusa_sim.start_print("BENCHY~1.BGC")
    services.printer_poll(printer=prusa)
    prusa_sim.error()  # the printer stops taking commands before the next poll
    with run_tasks():
        admin_client.post(command_url(prusa, "stop"), {"confirm": "yes"})
    command = PrinterCommand.objects.get()
    assert command.status == CommandStatus.FAILED and "409" in command.error
    assert prusa_sim.host not in command.error
    panel = commands_panel(admin_client, prusa)
    assert 'data-status="failed"' in panel and "409" in panel


# --- idempotency ------------------------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_makes_one_command(admin_client, prusa, prusa_sim, run_tasks):
    prusa_sim.start_print("BENCHY~1.BGC")
    services.printer_poll(printer=prusa)
    key = confirmation_key(admin_client, prusa, "pause")
    with run_tasks() as queued:
        for _twice in range(2):  # the confirmation sent twice (a double click, a reload)
            response = admin_client.post(command_url(prusa, "pause"), {"confirm": "yes", "idempotency_key": key})
            assert response.status_code == 302
    assert PrinterCommand.objects.count() == 1 and len(queued) == 1
    assert [path for method, path, status in prusa_sim.requests if method == "PUT" and status == 204] == [
        f"/api/v1/job/{prusa_sim.sim.job.id}/pause"]

    first = services.printer_command_request(printer=prusa, action="resume", idempotency_key="staff-7")
    again = services.printer_command_request(printer=prusa, action="resume", idempotency_key="staff-7")
    assert first.pk == again.pk and PrinterCommand.objects.count() == 2
    with pytest.raises(PrinterConflict, match="Idempotency-Key"):
        services.printer_command_request(printer=prusa, action="stop", idempotency_key="staff-7")
    assert PrinterCommand.objects.count() == 2


def test_starting_a_file_twice_with_one_key_starts_it_once(bambu_printer):
    services.printer_apply_state(printer=bambu_printer, state=NormalisedState(
        state=PrinterState.IDLE, filament_slots=[{"slot": 0, "loaded": True}]))
    first = services.printer_start_file(printer=bambu_printer, path="/cube.gcode.3mf", filament_mapping=[0],
                                        idempotency_key="job-41")
    again = services.printer_start_file(printer=bambu_printer, path="/cube.gcode.3mf", filament_mapping=[0],
                                        idempotency_key="job-41")
    assert first.pk == again.pk and first.params["file"] == "cube.gcode.3mf"
    with pytest.raises(PrinterConflict, match="Idempotency-Key"):
        services.printer_start_file(printer=bambu_printer, path="/other.gcode.3mf", idempotency_key="job-41")
    assert PrinterCommand.objects.count() == 1


# --- expiry by the schedule -----------------------------------------------------------------------------


def test_an_expired_command_is_expired_by_the_scheduled_task(admin_client, bambu_printer, prusa, settings):
    settings.BAMBU_COMMAND_TIMEOUT_SECONDS = 5
    spec = next(s for s in SCHEDULES if s.func == "printers.tasks.expire_printer_commands")
    assert spec.schedule_type == Schedule.MINUTES and spec.minutes == 1
    call_command("sync_schedules")
    assert Schedule.objects.filter(name=spec.name, func=spec.func).exists()

    for printer in (bambu_printer, prusa):
        services.printer_apply_state(printer=printer, state=NormalisedState(state=PrinterState.PRINTING, job_key="3"))
    old = timezone.now() - timedelta(seconds=60)
    bambu_waiting = services.printer_command_request(printer=bambu_printer, action="pause")
    prusa_waiting = services.printer_command_request(printer=prusa, action="pause", idempotency_key="a")
    prusa_unanswered = services.printer_command_request(printer=prusa, action="stop", idempotency_key="b")
    services.command_mark_sent(command=prusa_unanswered, sequence_id="3")
    PrinterCommand.objects.update(created_at=old)
    fresh = services.printer_command_request(printer=bambu_printer, action="stop", idempotency_key="c")

    admin_client.get(reverse("admin:printers_printercommand_changelist"))  # pages that read write nothing
    admin_client.get(reverse("admin:printers_printer_change", args=[bambu_printer.pk]))
    assert PrinterCommand.objects.filter(status=CommandStatus.EXPIRED).count() == 0

    assert import_string(spec.func)() == "expired 3 commands"
    expired = {c.pk: c for c in PrinterCommand.objects.filter(status=CommandStatus.EXPIRED)}
    assert set(expired) == {bambu_waiting.pk, prusa_waiting.pk, prusa_unanswered.pk}
    assert "run_printers" in expired[bambu_waiting.pk].error
    assert "task worker" in expired[prusa_waiting.pk].error
    assert "no outcome" in expired[prusa_unanswered.pk].error
    assert all(c.finished_at is not None for c in expired.values())
    fresh.refresh_from_db()
    assert fresh.status == CommandStatus.PENDING
    assert tasks.expire_printer_commands() == "expired 0 commands"  # safe to run again


def test_a_command_task_is_safe_twice_and_never_late(prusa, prusa_sim, settings):
    settings.BAMBU_COMMAND_TIMEOUT_SECONDS = 5
    prusa_sim.start_print("BENCHY~1.BGC")
    services.printer_poll(printer=prusa)
    command = services.printer_command_request(printer=prusa, action="pause")
    assert tasks.run_printer_command(command.pk) == CommandStatus.SUCCEEDED
    assert tasks.run_printer_command(command.pk) == CommandStatus.SUCCEEDED  # the second run sends nothing
    assert len([r for r in prusa_sim.requests if r[0] == "PUT" and r[2] == 204]) == 1

    late = services.printer_command_request(printer=prusa, action="resume")
    PrinterCommand.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert tasks.run_printer_command(late.pk) == CommandStatus.EXPIRED  # a resume wanted minutes ago is not sent
    assert prusa_sim.sim.printer_state == "PAUSED"
    assert tasks.run_printer_command(999_999) == "gone"


def test_the_listener_leaves_commands_of_polled_printers_alone(prusa, fast_mqtt):
    from printers.listener import Listener

    services.printer_apply_state(printer=prusa, state=NormalisedState(state=PrinterState.PRINTING, job_key="3"))
    command = services.printer_command_request(printer=prusa, action="pause")
    running = Listener()
    try:
        running.step()
    finally:
        running.close()
    command.refresh_from_db()
    assert command.status == CommandStatus.PENDING  # for its task, not failed by the listener


# --- uploading a file and starting it ------------------------------------------------------------------


def test_bambu_upload_over_ftps_then_start_over_mqtt(broker, bambu_printer, listener, settings):
    data = corpus(BAMBU_FILE).read_bytes()
    with BambuFTPSSimulator(serial=SERIAL, access_code=ACCESS_CODE) as storage:
        settings.BAMBU_FTPS_PORT = storage.port
        sim = make_sim(broker, storage=storage, files=()).start()
        try:
            step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
            entry = services.printer_file_upload(printer=bambu_printer, name="cube.gcode.3mf",
                                                 source=io.BytesIO(data))
            assert (entry.path, entry.name, entry.size_bytes) == ("/cube.gcode.3mf", "cube.gcode.3mf", len(data))
            assert storage.uploads == ["/cube.gcode.3mf"] and storage.read_file("/cube.gcode.3mf") == data
            assert storage.data_connections and all(storage.data_connections)  # the TLS session was resumed
            listed = {f.path: f for f in printer_files_list(printer=bambu_printer)}
            assert listed["/cube.gcode.3mf"].size_bytes == len(data)

            slot = next(s["slot"] for s in live(bambu_printer).filament_slots if s.get("loaded") or s.get("type"))
            command = services.printer_start_file(printer=bambu_printer, path=entry.path, filament_mapping=[slot])
            command = step_until(listener, answered(command), what="project_file acknowledged")
            assert command.status == CommandStatus.SUCCEEDED
            request = sent_to(sim, "project_file")[-1]
            assert request["url"] == "file:///sdcard/cube.gcode.3mf" and request["param"] == "Metadata/plate_1.gcode"
            assert request["ams_mapping"] == [slot] and request["use_ams"] is True
            step_until(listener, state_is(bambu_printer, PrinterState.PRINTING), what="printing the uploaded file")
            assert live(bambu_printer).current_file == "cube"
        finally:
            sim.stop()


def test_bambu_printer_does_not_start_a_file_it_does_not_have(broker, bambu_printer, listener):
    with BambuFTPSSimulator(serial=SERIAL, access_code=ACCESS_CODE) as storage:
        sim = make_sim(broker, storage=storage).start()
        try:
            step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
            command = services.printer_start_file(printer=bambu_printer, path="/never-uploaded.gcode.3mf")
            step_until(listener, answered(command))
            step_until(listener, state_is(bambu_printer, PrinterState.PREPARING))
            time.sleep(0.3)  # a few of the printer's ticks: it stays there
            assert sim.state["stg_cur"] == 77 and sim.state["gcode_state"] == "PREPARE"  # stuck, like a printer
        finally:
            sim.stop()


def test_prusalink_upload_then_start_over_http(prusa, prusa_sim, run_tasks):
    data = corpus(PRUSA_FILE).read_bytes()
    services.printer_poll(printer=prusa)
    entry = services.printer_file_upload(printer=prusa, name="minicube 0.4n.bgcode", source=io.BytesIO(data))
    assert (entry.path, entry.folder) == ("/usb/minicube 0.4n.bgcode", "/usb")
    assert prusa_sim.uploads == ["minicube 0.4n.bgcode"]
    stored = prusa_sim.find_file("minicube 0.4n.bgcode")
    assert stored.content == data and stored.sfn == "MINICU~1.BGC"
    assert [status for method, _path, status in prusa_sim.requests if method == "PUT"] == [201]  # sent once
    assert "minicube 0.4n.bgcode" in {f.name for f in printer_files_list(printer=prusa)}

    with run_tasks():
        command = services.printer_start_file(printer=prusa, path=entry.path)
        assert command.status == CommandStatus.PENDING
    command.refresh_from_db()
    assert command.status == CommandStatus.SUCCEEDED
    assert prusa_sim.sim.printer_state == "PRINTING" and prusa_sim.sim.job.file.lfn == "minicube 0.4n.bgcode"
    state = live(prusa)
    assert state.state == PrinterState.PRINTING and state.current_file == "minicube 0.4n.bgcode"
    with pytest.raises(PrinterConflict, match="busy"):
        services.printer_start_file(printer=prusa, path=entry.path)


def test_prusalink_takes_no_filament_mapping_and_one_plate(prusa, prusa_sim):
    services.printer_poll(printer=prusa)
    with pytest.raises(InvalidInput, match="no filament slot mapping"):
        services.printer_start_file(printer=prusa, path="/usb/BENCHY~1.BGC", filament_mapping=[0])
    with pytest.raises(InvalidInput, match="plate"):
        services.printer_start_file(printer=prusa, path="/usb/BENCHY~1.BGC", plate=2)
    with pytest.raises(InvalidInput, match="/usb/"):
        services.printer_start_file(printer=prusa, path="/usb/../BENCHY~1.BGC")
    services.printer_start_file(printer=prusa, path="/usb/BENCHY~1.BGC", filament_mapping=[-1])  # unused: fine
    assert PrinterCommand.objects.count() == 1


@pytest.mark.parametrize("name", ["", "   ", "..", "parts/gear.bgcode", "..\\gear.bgcode", "gear.stl",
                                  "gear\x00.bgcode", "a" * 200 + ".bgcode", "what?.bgcode", None])
def test_bad_upload_names_are_refused_before_any_transfer(prusa, prusa_sim, name):
    with pytest.raises(InvalidInput):
        services.printer_file_upload(printer=prusa, name=name, source=io.BytesIO(b"GCDE"))
    assert prusa_sim.requests == [] and prusa_sim.uploads == []


def test_upload_to_an_unreachable_printer_is_a_clear_error(prusa, prusa_sim):
    from printers.exceptions import PrinterUnreachable

    prusa_sim.power_off()
    with pytest.raises(PrinterUnreachable, match="refused"):
        services.printer_file_upload(printer=prusa, name="gear.bgcode", source=io.BytesIO(b"GCDE"))
    assert prusa_sim.uploads == []

"""The Bambu driver, run_printers' listener and the simulator over a real Mosquitto with TLS."""

import logging
import ssl
import time

import pytest

from printers import services, tasks
from printers.choices import CommandStatus, JobOutcome, PrinterState
from printers.drivers.bambu.client import BambuConnection, certificate_names, command_message
from printers.models import PrinterCommand, PrinterJob, StateTransition
from printers.simulators.broker import make_certificates, mosquitto_binary
from printers.tests.mqtt import ACCESS_CODE, SERIAL, answered, live, make_sim, start_long_print, state_is, step_until


def transitions(printer) -> list[tuple[str, str]]:
    return list(StateTransition.objects.filter(printer=printer).order_by("at", "id")
                .values_list("from_state", "to_state"))


def test_mosquitto_is_installed():
    assert mosquitto_binary()  # fails loudly, never skips


@pytest.mark.parametrize("profile", ["A1", "X1"])
def test_job_runs_start_to_finish_through_the_real_protocol(broker, bambu_printer, listener, profile):
    sim = make_sim(broker, profile=profile).start()
    try:
        step_until(listener, state_is(bambu_printer, PrinterState.IDLE), what="idle after pushall")
        assert live(bambu_printer).filament_slots  # AMS from the corpus payload
        command = services.printer_start_file(printer=bambu_printer, path="benchy.gcode.3mf", filament_mapping=[0])
        assert command.status == CommandStatus.PENDING  # requested; the listener sends it
        command = step_until(listener, answered(command), what="project_file acknowledged")
        assert command.status == CommandStatus.SUCCEEDED and command.sequence_id
        request = sim.received[-1]["print"]
        assert request["command"] == "project_file" and request["sequence_id"] == command.sequence_id
        assert request["url"] == "file:///sdcard/benchy.gcode.3mf" and request["ams_mapping"] == [0]
        step_until(listener, state_is(bambu_printer, PrinterState.FINISHED), what="finished")
        listener.flush(everything=True)
    finally:
        sim.stop()
    job = PrinterJob.objects.get(printer=bambu_printer)
    assert job.outcome == JobOutcome.COMPLETED and job.file_name == "benchy" and job.observed_start
    path = transitions(bambu_printer)
    assert path[0] == ("offline", "idle")
    assert ("idle", "preparing") in path and ("printing", "finished") in path
    assert len(path) == len(set(path))  # each change recorded once


def test_pause_resume_then_stop_is_a_cancel_not_a_failure(broker, bambu_printer, listener):
    sim = make_sim(broker, print_ticks=400).start()
    try:
        step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
        sim.start_job()
        step_until(listener, state_is(bambu_printer, PrinterState.PRINTING))
        for action, state in (("pause", PrinterState.PAUSED), ("resume", PrinterState.PRINTING),
                              ("stop", PrinterState.CANCELLED)):
            command = services.printer_command_request(printer=bambu_printer, action=action)
            step_until(listener, answered(command), what=f"{action} acknowledged")
            step_until(listener, state_is(bambu_printer, state))
        # print_error goes back to 0 a few ticks later: still a cancel, and no second end.
        step_until(listener, lambda: sim.state["print_error"] == 0 and not listener.slots[bambu_printer.pk].pending
                   and sim.published > 0, what="print_error cleared")
        time.sleep(0.2)
        listener.step()
        listener.flush(everything=True)
    finally:
        sim.stop()
    assert live(bambu_printer).state == PrinterState.CANCELLED
    job = PrinterJob.objects.get(printer=bambu_printer)
    assert job.outcome == JobOutcome.CANCELLED
    path = transitions(bambu_printer)
    assert path.count(("printing", "paused")) == 1 and path.count(("paused", "printing")) == 1
    assert path.count(("printing", "cancelled")) == 1
    assert PrinterCommand.objects.filter(status=CommandStatus.SUCCEEDED).count() == 3


def test_a_failure_is_a_failure(broker, bambu_printer, listener, sim):
    start_long_print(listener, bambu_printer, sim)
    with sim._lock:
        sim.state.update({"gcode_state": "FAILED", "print_error": 117473286})
    step_until(listener, state_is(bambu_printer, PrinterState.FAILED))
    assert PrinterJob.objects.get(printer=bambu_printer).outcome == JobOutcome.FAILED


def test_hms_raise_and_clear(broker, bambu_printer, listener, sim):
    start_long_print(listener, bambu_printer, sim)
    sim.raise_hms(0x07008000, 0x00020006)
    step_until(listener, state_is(bambu_printer, PrinterState.NEEDS_ATTENTION))
    assert live(bambu_printer).errors[0]["severity"] == "serious"
    sim.clear_hms()
    step_until(listener, state_is(bambu_printer, PrinterState.PRINTING))
    assert PrinterJob.objects.get(printer=bambu_printer).outcome == JobOutcome.RUNNING


def test_unacknowledged_command_that_worked_succeeds(broker, bambu_printer, listener, sim):
    start_long_print(listener, bambu_printer, sim)
    sim.ack_commands = False
    command = services.printer_command_request(printer=bambu_printer, action="pause")
    step_until(listener, state_is(bambu_printer, PrinterState.PAUSED))
    command = step_until(listener, answered(command), what="the command's timeout")
    assert command.status == CommandStatus.SUCCEEDED  # no ack, but the printer paused: success


def test_light_command_is_acknowledged(broker, bambu_printer, listener, sim):
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    command = services.printer_command_request(printer=bambu_printer, action="light", light_on=True)
    command = step_until(listener, answered(command), what="ledctrl acknowledged")
    assert command.status == CommandStatus.SUCCEEDED
    assert sim.received[-1]["system"]["led_mode"] == "on"
    assert {"node": "chamber_light", "mode": "on"} in sim.state["lights_report"]


def test_firmware_that_drops_commands_is_detected(broker, bambu_printer, listener, sim):
    start_long_print(listener, bambu_printer, sim)
    sim.set_developer_mode(False)
    command = services.printer_command_request(printer=bambu_printer, action="pause")
    command = step_until(listener, answered(command), what="the command's timeout")
    assert command.status == CommandStatus.FAILED and "signed commands" in command.error
    assert "Developer Mode" in command.error
    assert sim.state["gcode_state"] == "RUNNING"


def test_command_expires_when_no_listener_runs(bambu_printer, fast_mqtt, monkeypatch):
    monkeypatch.setattr(services, "PICKUP_MARGIN_SECONDS", 0.1)
    live_row = live(bambu_printer)
    live_row.state = PrinterState.PRINTING
    live_row.save()
    command = services.printer_command_request(printer=bambu_printer, action="pause")
    assert command.status == CommandStatus.PENDING  # the request does not wait for anyone
    time.sleep(1.0)  # past the command timeout (0.8 s) and the pick-up margin
    assert tasks.expire_printer_commands() == "expired 1 commands"  # the schedule's task
    command.refresh_from_db()
    assert command.status == CommandStatus.EXPIRED and "run_printers" in command.error


def test_start_file_validation(bambu_printer):
    live_row = live(bambu_printer)
    live_row.state, live_row.filament_slots = PrinterState.IDLE, [{"slot": 0}, {"slot": 254}]
    live_row.save()
    from fablab.exceptions import ApplicationError, InvalidInput

    with pytest.raises(InvalidInput, match="Tray 3"):
        services.printer_start_file(printer=bambu_printer, path="a.gcode.3mf", filament_mapping=[3])
    with pytest.raises(InvalidInput):
        services.printer_start_file(printer=bambu_printer, path="../etc/passwd")
    for bad in (["x"], [True], [None]):
        with pytest.raises(InvalidInput, match="slot numbers"):
            services.printer_start_file(printer=bambu_printer, path="a.gcode.3mf", filament_mapping=bad)
    for plate in (0, 65, "two"):
        with pytest.raises(InvalidInput, match="plate"):
            services.printer_start_file(printer=bambu_printer, path="a.gcode.3mf", plate=plate)
    live_row.state = PrinterState.PRINTING
    live_row.save()
    with pytest.raises(ApplicationError, match="busy"):
        services.printer_start_file(printer=bambu_printer, path="a.gcode.3mf")
    assert not PrinterCommand.objects.exists()


def test_silent_printer_goes_offline_and_recovers(broker, bambu_printer, listener, sim):
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    sim.silent, sim.ignore_start = True, True
    step_until(listener, state_is(bambu_printer, PrinterState.OFFLINE), what="watchdog")
    assert "no report" in live(bambu_printer).last_error
    sim.silent = False
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE), what="recovery")
    assert transitions(bambu_printer) == [("offline", "idle"), ("idle", "offline"), ("offline", "idle")]


def test_pushing_start_wakes_a_printer_that_stopped_pushing(broker, bambu_printer, listener, sim):
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    sim.silent = True
    step_until(listener, lambda: any(r.get("pushing", {}).get("command") == "start" for r in sim.received),
               what="pushing.start")
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    assert not sim.silent


def test_malformed_and_invalid_utf8_reports_are_dropped(broker, bambu_printer, listener, sim):
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    connection = listener.slots[bambu_printer.pk].connection
    sim.send_raw(b'{"print": {"gcode_state": "RUN')
    sim.send_raw(b'{"print": {"wifi_signal": "\xff\xfe-40dBm", "command": "push_status", "msg": 1}}')
    sim.send_raw(b"[1, 2]")
    step_until(listener, lambda: connection.bad_messages >= 3, what="bad messages counted")
    sim.print_ticks = 400
    sim.start_job()
    step_until(listener, state_is(bambu_printer, PrinterState.PRINTING), what="reports after garbage")


def test_broker_restart_offline_then_back(broker, bambu_printer, listener, sim):
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    broker.stop()
    step_until(listener, state_is(bambu_printer, PrinterState.OFFLINE), what="offline while broker down")
    broker.start()
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE), timeout=12, what="back after restart")
    assert transitions(bambu_printer)[-2:] == [("idle", "offline"), ("offline", "idle")]


def test_printer_added_changed_removed_without_restart(broker, db, listener, sim):
    listener.step()
    assert listener.slots == {}
    printer = services.printer_create(name="late", driver="bambu", host=broker.host, port=broker.port,
                                      serial=SERIAL, secret="wrong-code")
    step_until(listener, lambda: printer.pk in listener.slots, what="new printer picked up")
    first = listener.slots[printer.pk].connection
    step_until(listener, lambda: first.auth_refused, what="auth refusal")
    assert live(printer).state == PrinterState.OFFLINE
    services.printer_set_credentials(printer=printer, secret=ACCESS_CODE)
    step_until(listener, state_is(printer, PrinterState.IDLE), what="reconnected with the new code")
    assert listener.slots[printer.pk].connection is not first
    printer.is_active = False
    printer.save()
    step_until(listener, lambda: printer.pk not in listener.slots, what="deactivated printer dropped")


def test_access_code_never_logged(broker, bambu_printer, listener, sim, caplog):
    caplog.set_level(logging.DEBUG)
    step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
    services.printer_set_credentials(printer=bambu_printer, secret="zz99yy88")  # refused by the broker
    step_until(listener, lambda: listener.slots[bambu_printer.pk].connection.auth_refused)
    assert ACCESS_CODE not in caplog.text and "zz99yy88" not in caplog.text
    assert ACCESS_CODE not in repr(listener.slots[bambu_printer.pk].connection)


def test_tls_name_must_be_the_serial(broker, tmp_path):
    events = []
    wrong = BambuConnection(printer_id=1, host=broker.host, port=broker.port, serial="01S00C999999999",
                            access_code=ACCESS_CODE, on_event=events.append, watchdog_seconds=0.3,
                            backoff_min=0.05, backoff_max=0.1).start()
    time.sleep(0.8)
    wrong.stop()
    assert not wrong.connected.is_set() and all(type(e).__name__ == "OfflineEvent" for e in events)


def test_tls_with_a_ca_file_verifies_chain_and_serial(broker, tmp_path):
    ok = BambuConnection(printer_id=1, host=broker.host, port=broker.port, serial=SERIAL, access_code=ACCESS_CODE,
                         on_event=lambda e: None, ca_file=str(broker.ca_file)).start()
    other_ca, _cert, _key = make_certificates(tmp_path, [SERIAL])
    bad = BambuConnection(printer_id=2, host=broker.host, port=broker.port, serial=SERIAL, access_code=ACCESS_CODE,
                          on_event=lambda e: None, ca_file=str(other_ca), backoff_min=0.05).start()
    try:
        assert ok.connected.wait(5)
        time.sleep(0.3)
        assert not bad.connected.is_set()
    finally:
        ok.stop()
        bad.stop()


def test_certificate_names_cn_and_san(tmp_path):
    from cryptography import x509

    _ca, cert_file, _key = make_certificates(tmp_path, [SERIAL])
    der = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    assert certificate_names(der) == [SERIAL]
    assert ssl.PROTOCOL_TLS_CLIENT  # the context type the driver uses


def test_command_messages_match_the_protocol():
    assert command_message("pause", "7") == {"print": {"sequence_id": "7", "command": "pause", "param": ""}}
    light = command_message("light", "8", {"mode": "off"})["system"]
    assert light["command"] == "ledctrl" and light["led_mode"] == "off" and light["led_node"] == "chamber_light"
    start = command_message("project_file", "9", {"file": "x.3mf", "plate": 2, "ams_mapping": [1, -1],
                                                  "model": "H2D"})["print"]
    assert start["param"] == "Metadata/plate_2.gcode" and start["url"] == "ftp:///x.3mf"
    assert start["use_ams"] is True and start["ams_mapping"] == [1, -1]
    with pytest.raises(ValueError):
        command_message("explode", "1")

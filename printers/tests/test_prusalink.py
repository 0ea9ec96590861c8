"""The real PrusaLink driver against the simulator over real HTTP on 127.0.0.1."""

import io
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from fablab.exceptions import NotFound
from fablab.tests.helpers import corpus_json
from printers import services, tasks
from printers.choices import AuthMethod, CommandStatus, Driver, JobOutcome, PrinterState
from printers.drivers.prusalink import PrusaLinkClient, normalise
from printers.drivers.prusalink.driver import PrusaLinkDriver
from printers.exceptions import PrinterAuthError, PrinterConflict, PrinterUnreachable, ReportError
from printers.models import PrinterCommand, PrinterJob, PrinterLiveState, StateTransition
from printers.simulators.prusalink import NONCE_VALID_SECONDS, PrusaLinkSimulator

PASSWORD = "Xy7-sim-secret"
LFN = "multiple_grots_0.4n_0.15mm_PLA_XLIS_5h36m.bgcode"


@pytest.fixture
def sim():
    with PrusaLinkSimulator(password=PASSWORD, slow_seconds=0.6) as simulator:
        simulator.add_file("MULTIP~1.BGC", LFN, b"GCDE" + bytes(range(256)) * 40, print_seconds=600)
        yield simulator


def client_for(sim, **kwargs) -> PrusaLinkClient:
    return PrusaLinkClient(host=sim.host, port=sim.port, password=kwargs.pop("password", PASSWORD),
                           timeout=kwargs.pop("timeout", 0.3), **kwargs)


@pytest.fixture
def printer(db, sim):
    return services.printer_create(name="Core One 1", driver=Driver.PRUSALINK, host=sim.host, port=sim.port,
                                   secret=PASSWORD)


@pytest.fixture(autouse=True)
def _short_timeouts(settings):
    settings.PRINTER_HTTP_TIMEOUT_SECONDS = 0.3
    settings.PRUSALINK_POLL_SECONDS = 60


def poll(printer):
    return services.printer_poll(printer=printer)


def command(printer, action):
    """Request a command and carry it out as its task would; returns the finished command."""
    requested = services.printer_command_request(printer=printer, action=action)
    tasks.run_printer_command(requested.pk)
    return PrinterCommand.objects.get(pk=requested.pk)


# --- auth --------------------------------------------------------------------------------


def test_digest_auth_and_stale_nonce_retry(sim):
    client = client_for(sim)
    assert client.version()["text"] == "PrusaLink"
    sim.advance(NONCE_VALID_SECONDS + 1)  # the nonce expires; the firmware answers stale=true
    assert client.info()["serial"] == "SIM-0000000001"
    statuses = [status for method, path, status in sim.requests if path == "/api/v1/info"]
    assert statuses == [401, 200]  # one stale round trip, then success with the new nonce
    challenge_count = len([r for r in sim.requests if r[2] == 401])
    client.status()
    assert len([r for r in sim.requests if r[2] == 401]) == challenge_count  # the fresh nonce is reused


def test_wrong_password_is_a_clear_auth_error(sim):
    with pytest.raises(PrinterAuthError, match="refused the credentials"):
        client_for(sim, password="wrong").status()


def test_every_protected_path_needs_auth_even_unknown_ones(sim):
    import requests

    for path in ("/api/v1/status", "/api/nothing", "/usb/MULTIP~1.BGC", "/thumb/s/usb/MULTIP~1.BGC"):
        response = requests.get(f"http://{sim.host}:{sim.port}{path}", timeout=1)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Digest realm="Printer API", nonce="')
        nonce = response.headers["WWW-Authenticate"].split('nonce="')[1].split('"')[0]
        assert len(nonce) == 16 and int(nonce, 16) >= 0


def test_api_key_and_its_toggle(sim):
    assert client_for(sim, use_api_key=True).status()["printer"]["state"] == "IDLE"
    with pytest.raises(PrinterAuthError):
        client_for(sim, use_api_key=True, password="nope").status()
    sim.api_key_enabled = False  # firmware variant that only accepts Digest
    with pytest.raises(PrinterAuthError):
        client_for(sim, use_api_key=True).status()


# --- reads, files, commands ----------------------------------------------------------------


def test_job_is_204_when_idle_and_file_listing_and_download(sim):
    client = client_for(sim)
    assert client.job() is None
    files = client.files()
    assert [(f.name, f.display_name, f.download) for f in files] == [("MULTIP~1.BGC", LFN, "/usb/MULTIP~1.BGC")]
    buffer = io.BytesIO()
    assert client.download(files[0].download, buffer) == len(sim.sim.files["MULTIP~1.BGC"].content)
    assert buffer.getvalue().startswith(b"GCDE")
    with pytest.raises(ReportError, match="not a download reference"):
        client.download("/api/v1/files/usb/MULTIP~1.BGC", io.BytesIO())
    with pytest.raises(NotFound):
        client.download("usb/MISSING.BGC", io.BytesIO())


def test_commands_and_409_in_the_wrong_state(sim):
    client = client_for(sim)
    client.start_print(path="MULTIP~1.BGC")
    job_id = client.job()["id"]
    with pytest.raises(PrinterConflict, match=r"resume job .* \(HTTP 409\)"):
        client.resume(job_id)
    client.pause(job_id)
    assert client.status()["printer"]["state"] == "PAUSED"
    with pytest.raises(PrinterConflict, match="pause"):
        client.pause(job_id)
    with pytest.raises(NotFound):
        client.stop(job_id + 1)
    with pytest.raises(PrinterConflict, match="no job to control"):
        client.stop("abc")
    client.resume(job_id)
    client.stop(job_id)
    assert client.status()["printer"]["state"] == "STOPPED"
    with pytest.raises(PrinterConflict):
        client.stop(job_id)
    with pytest.raises(PrinterConflict, match="start the print"):
        client.start_print(path="MULTIP~1.BGC")


@pytest.mark.parametrize(("fault", "message"), [("503", "HTTP 503"), ("reset", "reset"), ("slow", "did not answer")])
def test_faults_are_unreachable_errors(sim, fault, message):
    sim.fault = fault
    with pytest.raises(PrinterUnreachable, match=message):
        client_for(sim).status()


def test_refused_connection(sim):
    sim.power_off()
    with pytest.raises(PrinterUnreachable, match="connection refused"):
        client_for(sim).status()


# --- normalisation against the corpus and bad payloads --------------------------------------------


def _corpus(name):
    return corpus_json("printers", "prusalink", name)


def test_normalise_buddy_and_rpi_corpus():
    state = normalise(_corpus("pubeldev_buddy_api_v1_status_printing.json"),
                      _corpus("pubeldev_buddy_xl_api_v1_job_printing.json"))
    assert (state.state, state.job_key, state.remaining_seconds, state.bed_target_c) == ("printing", "109", 20100, 60)
    assert state.current_file.startswith("multiple_grots_0.4n")
    rpi = normalise(_corpus("pubeldev_prusalink-rpi_mk3s_api_v1_status_printing.json"),
                    _corpus("pubeldev_prusalink-rpi_mk3s_api_v1_job_printing.json"))
    assert (rpi.state, rpi.job_key, rpi.nozzle_temp_c) == ("printing", "113", 215.1)
    assert rpi.current_file == "fosdem_0.2mm_PLA,PLA_MK3SMMU3_7h16m.gcode"


@pytest.mark.parametrize(("raw", "expected"), [("IDLE", "idle"), ("READY", "idle"), ("BUSY", "busy"),
                                               ("PAUSED", "paused"), ("ATTENTION", "needs_attention"),
                                               ("FINISHED", "finished"), ("STOPPED", "cancelled"),
                                               ("ERROR", "failed"), ("SOMETHING_NEW", "busy")])
def test_state_mapping(raw, expected):
    assert normalise({"printer": {"state": raw}}).state == expected


@pytest.mark.parametrize(("status", "message"), [
    ({}, "printer.state is missing"),
    ({"printer": []}, "printer: expected an object"),
    ({"printer": {"state": 3}}, "printer.state: expected text"),
    ({"printer": {"state": "IDLE", "temp_bed": "warm"}}, "printer.temp_bed: expected a number"),
    ({"printer": {"state": "PRINTING"}, "job": {"id": {"x": 1}}}, "job.id"),
    ({"printer": {"state": "PRINTING"}, "job": {"id": 1, "progress": [1]}}, "job.progress"),
])
def test_bad_status_payloads(status, message):
    with pytest.raises(ReportError, match=message):
        normalise(status)


def test_unknown_fields_are_ignored():
    assert normalise({"printer": {"state": "IDLE", "new_sensor": 1}, "brand_new": {}}).state == "idle"


@pytest.mark.parametrize(("body", "message"), [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not valid UTF-8"),
                                               (b"[1]", "must be a JSON object")])
def test_malformed_answers_from_the_printer(sim, monkeypatch, body, message):
    from printers.simulators import prusalink as module

    monkeypatch.setattr(module._Handler, "_status", lambda self: None)
    original = module._Handler._json

    def broken_json(self, status, data):
        if data is None:
            return self._send(200, body)
        return original(self, status, data)

    monkeypatch.setattr(module._Handler, "_json", broken_json)
    with pytest.raises(ReportError, match=message):
        client_for(sim).status()


# --- polling through the service: jobs and transitions ----------------------------------------------


def test_completed_job_sticky_finished_and_acknowledge(sim, printer, django_capture_on_commit_callbacks,
                                                       signals_log):
    with django_capture_on_commit_callbacks(execute=True):
        assert poll(printer).state == PrinterState.IDLE
        sim.start_print("MULTIP~1.BGC")
        live = poll(printer)
        assert live.state == PrinterState.PRINTING and live.current_file == LFN and live.job_key == "100"
        sim.advance(300)
        live = poll(printer)
        assert live.progress_percent == 50.0 and live.remaining_seconds == 300
        sim.advance(400)
        for _ in range(3):  # FINISHED is sticky
            assert poll(printer).state == PrinterState.FINISHED
        sim.acknowledge()
        assert poll(printer).state == PrinterState.IDLE
    job = PrinterJob.objects.get()
    assert (job.external_job_id, job.outcome, job.progress_reached, job.file_name) == (
        "100", JobOutcome.COMPLETED, 100.0, LFN)
    assert signals_log == [("started", job.pk, False), ("finished", job.pk, "completed")]
    assert list(StateTransition.objects.order_by("at", "id").values_list("to_state", flat=True)) == [
        "idle", "printing", "finished", "idle"]


def test_cancel_is_stopped_and_failure_is_error(sim, printer):
    poll(printer)
    sim.start_print("MULTIP~1.BGC")
    poll(printer)
    assert command(printer, "stop").status == CommandStatus.SUCCEEDED  # through the driver, then a poll
    printer.live.refresh_from_db()
    assert printer.live.state == PrinterState.CANCELLED
    sim.acknowledge()
    poll(printer)
    sim.start_print("MULTIP~1.BGC")
    poll(printer)
    sim.error()
    live = poll(printer)
    assert live.state == PrinterState.FAILED and live.errors[0]["severity"] == "fatal"
    assert list(PrinterJob.objects.order_by("started_at", "id").values_list("external_job_id", "outcome")) == [
        ("100", "cancelled"), ("101", "failed")]


def test_attention_pause_resume_and_409_through_services(sim, printer):
    poll(printer)
    sim.start_print("MULTIP~1.BGC")
    poll(printer)
    assert command(printer, "pause").status == CommandStatus.SUCCEEDED
    assert PrinterLiveState.objects.get(printer=printer).state == PrinterState.PAUSED
    with pytest.raises(PrinterConflict, match="cannot pause while paused"):  # refused before it is sent
        services.printer_command_request(printer=printer, action="pause")
    PrinterLiveState.objects.filter(printer=printer).update(state=PrinterState.PRINTING)  # a stale state ...
    refused = command(printer, "pause")  # ... lets it through, and the printer answers 409
    assert refused.status == CommandStatus.FAILED and "409" in refused.error
    poll(printer)
    assert command(printer, "resume").status == CommandStatus.SUCCEEDED
    assert PrinterLiveState.objects.get(printer=printer).state == PrinterState.PRINTING
    sim.attention()
    assert poll(printer).state == PrinterState.NEEDS_ATTENTION
    sim.resolve_attention()
    assert poll(printer).state == PrinterState.PRINTING
    assert PrinterJob.objects.get().outcome == JobOutcome.RUNNING


def test_job_id_disappearing_closes_the_job(sim, printer):
    poll(printer)
    sim.start_print("MULTIP~1.BGC")
    sim.advance(60)
    poll(printer)
    client_for(sim).stop(100)  # stopped on the printer ...
    sim.acknowledge()  # ... and confirmed before our next poll: STOPPED was never seen
    assert poll(printer).state == PrinterState.IDLE
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.CANCELLED and job.ended_at is not None and job.progress_reached == 10.0


def test_job_disappearing_unseen_end(sim, printer):
    poll(printer)
    sim.start_print("MULTIP~1.BGC")
    sim.advance(100)
    poll(printer)
    sim.advance(600)
    sim.acknowledge()  # finished and acknowledged between two polls
    live = poll(printer)
    assert live.state == PrinterState.IDLE
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.CANCELLED  # last seen at 16.67 %: not provably complete
    assert "disappeared" in job.end_reason


def test_offline_after_three_failures_and_recovery(sim, printer, django_capture_on_commit_callbacks, signals_log):
    with django_capture_on_commit_callbacks(execute=True):
        poll(printer)
        sim.start_print("MULTIP~1.BGC")
        poll(printer)
        sim.fault = "503"
        assert poll(printer).state == PrinterState.PRINTING
        sim.fault = "reset"
        assert poll(printer).state == PrinterState.PRINTING
        sim.fault = None
        sim.power_off()
        live = poll(printer)
        assert live.state == PrinterState.OFFLINE and "refused" in live.last_error
        sim.power_on()
        sim.advance(30)
        live = poll(printer)
        assert live.state == PrinterState.PRINTING and live.consecutive_failures == 0
    assert PrinterJob.objects.count() == 1 and len(signals_log) == 1  # reconnect is a sync, no new job
    transitions = list(StateTransition.objects.order_by("at", "id").values_list("to_state", "reason"))
    assert [to for to, _reason in transitions] == ["idle", "printing", "offline", "printing"]
    assert "connection refused" in transitions[2][1] and transitions[3][1] == "reconnected"


def test_a_poller_restart_is_a_sync(sim, printer, django_capture_on_commit_callbacks, signals_log):
    """The task cluster was killed mid-job: no failure was counted, the live row still says printing."""
    t0 = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.printer_poll(printer=printer, at=t0)
        sim.start_print("MULTIP~1.BGC")
        sim.advance(60)
        live = services.printer_poll(printer=printer, at=t0 + timedelta(seconds=60))
        assert live.state == PrinterState.PRINTING and live.remaining_seconds == 540
        sim.advance(3600)  # the job finished while nothing polled; FINISHED is sticky
        live = services.printer_poll(printer=printer, at=t0 + timedelta(hours=2))
    assert live.state == PrinterState.FINISHED
    job = PrinterJob.objects.get()
    assert job.outcome == JobOutcome.COMPLETED and job.duration_seconds == 540  # not two hours, never 0
    assert job.ended_at == t0 + timedelta(seconds=600) and "not listening" in job.end_reason
    assert signals_log == [("started", job.pk, False), ("finished", job.pk, "completed")]
    # A job that started and ended while the poller was down is not made up after the restart.
    sim.acknowledge()
    sim.start_print("MULTIP~1.BGC")
    sim.advance(3600)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.printer_poll(printer=printer, at=t0 + timedelta(hours=4)).job_key == "101"
    assert PrinterJob.objects.count() == 1 and len(signals_log) == 2


def test_poll_sequence_loses_nothing_and_counts_nothing_twice(sim, printer, django_capture_on_commit_callbacks,
                                                              signals_log):
    with django_capture_on_commit_callbacks(execute=True):
        for _round in range(3):
            tasks.poll_prusalink_printers()
            sim.start_print("MULTIP~1.BGC")
            tasks.poll_prusalink_printers()
            tasks.poll_prusalink_printers()  # the task twice in a row: nothing new
            sim.advance(700)
            tasks.poll_prusalink_printers()
            tasks.poll_prusalink_printers()
            sim.acknowledge()
    assert list(PrinterJob.objects.order_by("started_at", "id").values_list("external_job_id", "outcome")) == [
        ("100", "completed"), ("101", "completed"), ("102", "completed")]
    assert [entry[0] for entry in signals_log] == ["started", "finished"] * 3
    assert StateTransition.objects.filter(to_state="finished").count() == 3


def test_credentials_never_in_logs(sim, printer, caplog):
    caplog.set_level(logging.DEBUG)
    poll(printer)
    sim.advance(NONCE_VALID_SECONDS + 5)
    poll(printer)
    sim.power_off()
    for _ in range(3):
        poll(printer)
    assert caplog.records  # something was logged ...
    assert PASSWORD not in caplog.text  # ... never the password
    access = services.printer_access(printer=printer)
    assert PASSWORD not in repr(printer) and PASSWORD not in repr(access)
    assert PASSWORD not in repr(PrusaLinkDriver().client(access))


def test_api_key_printer(sim, db):
    printer = services.printer_create(name="MK4", driver=Driver.PRUSALINK, host=sim.host, port=sim.port,
                                      secret=PASSWORD, auth_method=AuthMethod.API_KEY)
    assert poll(printer).state == PrinterState.IDLE
    assert not any(status == 401 for *_rest, status in sim.requests)


def test_printer_without_credentials_is_counted_as_a_failure(db, sim):
    printer = services.printer_create(name="No secret", driver=Driver.PRUSALINK, host=sim.host, port=sim.port)
    live = poll(printer)
    assert live.consecutive_failures == 1 and "no credentials" in live.last_error

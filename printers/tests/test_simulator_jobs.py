"""Simulated printers print what they are sent: for the file's time, reporting what the file states, and fail or
cancel at a given layer the way the printer would report it."""

import io
import json

import pytest

from printers import services
from printers.choices import CommandStatus, Driver, JobOutcome, PrinterState
from printers.drivers.bambu.merge import BambuReport
from printers.drivers.prusalink.client import PrusaLinkClient, normalise
from printers.models import PrinterJob
from printers.simulators.bambu import (
    AMS_FEED_ERROR,
    CANCEL_PRINT_ERROR,
    FILE_READ_ERROR,
    FakeBambuPrinter,
    hms_of,
)
from printers.simulators.ftps import BambuFTPSSimulator
from printers.simulators.printfile import minutes, read_print_file
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.simulators.storage import builtin_print_file
from printers.tests.mqtt import ACCESS_CODE, SERIAL, answered, live, make_sim, state_is, step_until

LAYERS, SECONDS = 10, 1000


class Recorder:
    """A simulated Bambu printer without a broker: its reports, as sent, go to a list and a merged report."""

    def __init__(self, **options):
        options = {"profile": "A1", "tick_seconds": 10.0, "prepare_ticks": 2, "cancel_clear_ticks": 2,
                   "files": {}, **options}
        self.sim = FakeBambuPrinter(serial="039SIM000000042", host="127.0.0.1", port=1, access_code="x", **options)
        self.sent: list[dict] = []
        self.report = BambuReport()
        self.sim._publish = self._record

    def _record(self, message) -> bool:
        message = json.loads(message if isinstance(message, bytes) else json.dumps(message))
        self.sent.append(message)
        self.report.feed(message)
        return True

    def tick_until(self, predicate, limit: int = 500) -> None:
        for _ in range(limit):
            self.sim.tick()
            if predicate(self.sim.state):
                return
        raise AssertionError(f"never reached; last state {self.sim.state.get('gcode_state')}")

    def statuses(self) -> list[dict]:
        return [m["print"] for m in self.sent if "print" in m and m["print"].get("command") == "push_status"]


@pytest.fixture
def tube():
    return builtin_print_file("3mf", layers=LAYERS, seconds=SECONDS)


def test_a_bambu_printer_prints_a_file_for_its_time_with_the_files_progress(tube):
    name, data = tube
    plan = read_print_file(name, data)
    printer = Recorder(profile="X1C", speed=2.0)  # an X1 sends everything on every tick
    printer.sim.add_file(name, data)
    assert printer.sim.start_job(name)
    running = []
    while printer.sim.state["gcode_state"] != "FINISH":
        printer.sim.tick()
        reported = printer.report.print
        if reported["gcode_state"] == "RUNNING":
            running.append(reported)
            expected = plan.at((len(running) - 1) * 10.0 * 2.0)  # a tick prints tick_seconds * speed of the file
            assert reported["mc_percent"] == int(expected.percent)
            assert reported["layer_num"] == expected.layer and reported["total_layer_num"] == LAYERS
            assert reported["mc_remaining_time"] == minutes(expected.remaining_seconds / 2.0)
    assert len(running) == SECONDS / 20  # the file's time at twice the speed
    assert [r["layer_num"] for r in running][-1] == LAYERS and running[0]["mc_remaining_time"] == 9
    finished = printer.report.normalised()
    assert finished.state == PrinterState.FINISHED and finished.progress_percent == 100
    assert finished.current_file == "simulator-tube" and printer.sim.jobs == [(name, "finished")]
    assert printer.report.print["nozzle_target_temper"] == 0  # cooling down


def test_a_bambu_printer_fails_at_the_layer_it_is_told(tube):
    printer = Recorder()
    printer.sim.add_file(*tube)
    printer.sim.fail_at_layer(4)  # the next job
    printer.sim.start_job(tube[0])
    printer.tick_until(lambda s: s["gcode_state"] == "FAILED")
    statuses = printer.statuses()
    last_running = [s for s in statuses if s.get("gcode_state", "RUNNING") == "RUNNING" and "layer_num" in s][-1]
    assert last_running["layer_num"] == 4
    failed = printer.report.print
    assert failed["gcode_state"] == "FAILED" and failed["layer_num"] == 4
    assert failed["print_error"] == AMS_FEED_ERROR and hms_of(AMS_FEED_ERROR) in failed["hms"]
    state = printer.report.normalised()
    assert state.state == PrinterState.FAILED
    assert {e["code"] for e in state.errors} >= {"0700_8006", "HMS_0700_0000_0002_8006"}
    assert "AMS cannot feed filament" in " ".join(e["text"] for e in state.errors)


def test_a_bambu_printer_is_cancelled_at_the_layer_it_is_told_while_printing(tube):
    printer = Recorder()
    printer.sim.add_file(*tube)
    printer.sim.start_job(tube[0])
    printer.tick_until(lambda s: s["gcode_state"] == "RUNNING" and s["layer_num"] >= 1)
    printer.sim.cancel_at_layer(6)
    printer.tick_until(lambda s: s["gcode_state"] == "FAILED")
    statuses = printer.statuses()
    cancel_delta = next(i for i, s in enumerate(statuses) if s.get("print_error") == CANCEL_PRINT_ERROR)
    assert statuses[cancel_delta - 1]["layer_num"] == 6 and set(statuses[cancel_delta]) == {
        "print_error", "command", "msg", "sequence_id"}  # the cancel's own delta first, as a printer sends it
    assert printer.report.normalised().state == PrinterState.CANCELLED
    printer.tick_until(lambda s: s["print_error"] == 0)  # cleared a few seconds later, still cancelled
    assert printer.report.normalised().state == PrinterState.CANCELLED
    assert printer.sim.jobs == [(tube[0], "cancelled")]


def test_a_bambu_printer_fails_a_file_it_cannot_read():
    printer = Recorder()
    printer.sim.add_file("broken.gcode.3mf", b"PK\x03\x04 not really a zip")
    assert printer.sim.start_job("broken.gcode.3mf")
    printer.tick_until(lambda s: s["gcode_state"] != "PREPARE")
    assert printer.sim.state["gcode_state"] == "FAILED" and printer.sim.state["print_error"] == FILE_READ_ERROR


def test_a_bambu_printer_plays_its_files_one_after_the_other(tube):
    printer = Recorder(auto_jobs=True, job_gap_seconds=30.0, speed=10.0)
    printer.sim.add_file(*tube)
    other = builtin_print_file("3mf", layers=4, seconds=400)
    printer.sim.add_file("second.gcode.3mf", other[1])
    printer.tick_until(lambda s: s["gcode_state"] == "FINISH")
    first = printer.sim.state["gcode_file"]
    printer.tick_until(lambda s: s["gcode_state"] == "IDLE")  # the plate is cleared after the gap ...
    printer.tick_until(lambda s: s["gcode_state"] == "PREPARE")  # ... and the next file starts
    assert printer.sim.state["gcode_file"] != first
    assert printer.sim.state["gcode_file"] in {tube[0], "second.gcode.3mf"}
    assert not printer.sim.clear_plate()  # nothing to clear while it prints


def test_a_bambu_printer_without_files_plays_one_of_its_own():
    printer = Recorder(auto_jobs=True, speed=100.0)
    printer.tick_until(lambda s: s["gcode_state"] == "FINISH")
    assert printer.sim.jobs == [("simulator-tube.gcode.3mf", "finished")]


# --- PrusaLink -------------------------------------------------------------------------------------


@pytest.fixture
def core_one():
    with PrusaLinkSimulator(password="pw", speed=2.0) as sim:
        yield sim, PrusaLinkClient(host=sim.host, port=sim.port, password="pw")


def upload_and_print(client, sim, name: str, data: bytes) -> None:
    client.session.put(f"{client.base_url}/api/v1/files/usb/{name}", data=data, timeout=5,
                       headers={"Print-After-Upload": "?1"}).raise_for_status()
    assert sim.sim.printer_state == "PRINTING" and sim.sim.job.file.lfn == name


def test_a_prusalink_printer_prints_an_upload_for_its_time_with_the_files_progress(core_one):
    sim, client = core_one
    name, data = builtin_print_file("gcode", layers=LAYERS, seconds=SECONDS)
    plan = read_print_file(name, data)
    upload_and_print(client, sim, name, data)
    sim.advance(150)  # 300 s of the file at speed 2
    expected = plan.at(300)
    status = client.status()
    assert status["job"]["progress"] == expected.percent == 30 and sim.layer == expected.layer == 4
    assert status["job"]["time_remaining"] == expected.remaining_seconds / 2 and status["job"]["time_printing"] == 150
    assert status["printer"]["target_nozzle"] == 215 and "axis_x" not in status["printer"]
    sim.advance(350)
    assert client.status()["printer"]["state"] == "FINISHED" and client.job()["progress"] == 100
    sim.clear_plate()
    assert client.status()["printer"]["state"] == "IDLE" and client.job() is None


@pytest.mark.parametrize(("how", "state", "normalised"), [
    ("fail_at_layer", "ERROR", PrinterState.FAILED),
    ("cancel_at_layer", "STOPPED", PrinterState.CANCELLED),
])
def test_a_prusalink_printer_stops_at_the_layer_it_is_told(core_one, how, state, normalised):
    sim, client = core_one
    getattr(sim, how)(5)  # for the next job
    upload_and_print(client, sim, *builtin_print_file("gcode", layers=LAYERS, seconds=SECONDS))
    layers = []
    while sim.sim.printer_state == "PRINTING":
        sim.advance(20)
        layers.append(sim.layer)
        if sim.sim.printer_state == "PRINTING":
            assert client.status()["printer"]["state"] == "PRINTING"
    assert layers[-2:] == [5, 5] and max(layers) == 5
    assert client.status()["printer"]["state"] == state and client.job()["state"] == state
    assert normalise(client.status(), client.job()).state == normalised
    assert sim.jobs == [("simulator-tube.gcode", state)]


def test_a_prusalink_printer_plays_its_files_and_clears_the_plate_between_them():
    with PrusaLinkSimulator(password="pw", speed=50.0, auto_jobs=True, job_gap_seconds=30.0) as sim:
        sim.add_print_file("a.gcode", builtin_print_file("gcode", layers=5, seconds=500)[1])
        sim.add_print_file("b.gcode", builtin_print_file("gcode", layers=5, seconds=500)[1])
        seen = []
        for _ in range(60):
            sim.advance(1)
            seen.append((sim.sim.printer_state, sim.sim.job.id if sim.sim.job else None))
        states = [state for state, _id in seen]
        assert "PRINTING" in states and "FINISHED" in states and "IDLE" in states[states.index("FINISHED"):]
        assert len({job_id for _state, job_id in seen if job_id}) >= 2
        assert {name for name, _end in sim.jobs} <= {"a.gcode", "b.gcode"}


# --- over the real protocol -------------------------------------------------------------------------


def test_a_file_uploaded_over_ftps_fails_at_its_layer_and_the_job_is_recorded_failed(broker, bambu_printer,
                                                                                     listener, settings):
    name, data = builtin_print_file("3mf", layers=6, seconds=120)
    with BambuFTPSSimulator(serial=SERIAL, access_code=ACCESS_CODE) as storage:
        settings.BAMBU_FTPS_PORT = storage.port
        sim = make_sim(broker, storage=storage, files=(), speed=20.0).start()
        try:
            step_until(listener, state_is(bambu_printer, PrinterState.IDLE))
            entry = services.printer_file_upload(printer=bambu_printer, name=name, source=io.BytesIO(data))
            sim.fail_at_layer(3)
            command = services.printer_start_file(printer=bambu_printer, path=entry.path)
            assert step_until(listener, answered(command)).status == CommandStatus.SUCCEEDED
            step_until(listener, lambda: live(bambu_printer).total_layers == 6, what="the file's layer count")
            step_until(listener, state_is(bambu_printer, PrinterState.FAILED), what="failed at layer 3")
            listener.flush(everything=True)
        finally:
            sim.stop()
    state = live(bambu_printer)
    assert state.layer == 3 and "0700_8006" in {e["code"] for e in state.errors}
    job = PrinterJob.objects.get(printer=bambu_printer)
    assert job.outcome == JobOutcome.FAILED and job.file_name == "simulator-tube"


@pytest.mark.django_db
def test_a_prusalink_upload_is_printed_to_its_end_and_recorded_completed():
    name, data = builtin_print_file("gcode", layers=4, seconds=400)
    with PrusaLinkSimulator(password="pw", speed=4.0) as sim:
        printer = services.printer_create(name="Core One", driver=Driver.PRUSALINK, host=sim.host, port=sim.port,
                                          secret="pw")
        services.printer_poll(printer=printer)
        entry = services.printer_file_upload(printer=printer, name=name, source=io.BytesIO(data))
        sim.start_print(sim.find_file(entry.path.removeprefix("/usb/")).sfn)
        services.printer_poll(printer=printer)
        sim.advance(50)
        assert services.printer_poll(printer=printer).state == PrinterState.PRINTING
        sim.advance(60)
        assert services.printer_poll(printer=printer).state == PrinterState.FINISHED
    job = PrinterJob.objects.get(printer=printer)
    assert job.outcome == JobOutcome.COMPLETED and job.file_name == name and job.progress_reached == 100


# --- orders by hand: the control file of simulate_printers ---------------------------------------------


def test_the_control_file_tells_printers_to_fail_cancel_start_and_clear(tmp_path, tube):
    from printers.simulators import control

    bambu = Recorder()
    bambu.sim.add_file(*tube)
    with PrusaLinkSimulator(password="pw") as prusa:
        prusa.add_print_file(*builtin_print_file("gcode"))
        orders = tmp_path / "control.json"
        orders.write_text(json.dumps([
            {"printer": "all", "fail_at_layer": 2},
            {"printer": bambu.sim.serial, "start": tube[0]},
            {"printer": f"prusa:{prusa.port}", "start": "simulator-tube.gcode"},
            {"printer": "nobody", "clear_plate": True},
            {"printer": "all", "cancel_at_layer": 0},
        ]))
        lines = control.read_and_apply(orders, [bambu.sim, prusa])
        assert not orders.exists()  # carried out once
        assert f"{bambu.sim.serial}: fail at layer 2" in lines and f"prusa:{prusa.port}: fail at layer 2" in lines
        assert f"{bambu.sim.serial}: started {tube[0]}" in lines
        assert f"prusa:{prusa.port}: started simulator-tube.gcode" in lines
        assert any(line.startswith("nobody: no such printer") for line in lines)
        assert f"prusa:{prusa.port}: cancel_at_layer refused: cancel_at_layer takes a layer number from 1, not 0" \
            in lines
        while prusa.sim.printer_state == "PRINTING":
            prusa.advance(30)
        assert prusa.sim.printer_state == "ERROR" and prusa.layer == 2
        bambu.tick_until(lambda s: s["gcode_state"] == "FAILED")
        assert bambu.sim.state["layer_num"] == 2
        orders.write_text('{"printer": "all", "clear_plate": true}')
        assert control.read_and_apply(orders, [bambu.sim, prusa]) == [
            f"{bambu.sim.serial}: plate cleared", f"prusa:{prusa.port}: plate cleared"]
        assert bambu.sim.state["gcode_state"] == "IDLE" and prusa.sim.printer_state == "IDLE"
        orders.write_text("{not json")
        assert control.read_and_apply(orders, [bambu.sim]) == [f"control file {orders}: Expecting property name "
                                                               "enclosed in double quotes: line 1 column 2 (char 1)"]
        assert control.read_and_apply(orders, [bambu.sim]) == []  # no file, nothing to do

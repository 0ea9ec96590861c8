"""run_printers at fleet scale: the shared network loop, paced connects, cheap reports, write priority."""

import copy
import json
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from printers import listener as listener_module
from printers import services
from printers.choices import Driver, PrinterState
from printers.drivers.bambu.client import (
    NORMALISE_INPUTS,
    BambuConnection,
    ReportTracker,
    StateEvent,
)
from printers.drivers.bambu.merge import BambuReport, decode_message
from printers.drivers.bambu.normalise import normalise
from printers.drivers.mqtt import MqttNetwork
from printers.exceptions import ReportError
from printers.listener import Listener
from printers.models import PrinterLiveState, StateTransition
from printers.simulators.bambu import PROFILES, BambuFleetSimulator, FakeBambuPrinter
from printers.simulators.broker import MosquittoBroker, free_port
from printers.state import NormalisedState
from printers.tests.conftest import MODEL_REPORTS, bambu_corpus_report

CODE = "fleet123"


def recorded_reports(profile: str) -> list[bytes]:
    """Everything a fake printer publishes through a job, a pause, HMS errors and a cancel."""
    sim = FakeBambuPrinter(serial="01S00C900000009", host="127.0.0.1", port=1, access_code=CODE,
                           profile=profile, prepare_ticks=2, print_ticks=6, cancel_clear_ticks=2,
                           tick_seconds=60)  # a minute a tick: the remaining time changes on every report
    published = []
    sim._publish = lambda message: published.append(
        message if isinstance(message, bytes) else json.dumps(message).encode()) or True
    sim._publish_status(full=True)
    script = {3: lambda: sim.start_job(), 6: lambda: sim._handle("print", {"command": "pause", "sequence_id": "1"}),
              8: lambda: sim._handle("print", {"command": "resume", "sequence_id": "2"}),
              9: lambda: sim.raise_hms(0x07008000, 0x00020006), 11: lambda: sim.clear_hms(),
              16: lambda: sim.start_job("cube.gcode.3mf"),
              18: lambda: sim._handle("print", {"command": "stop", "sequence_id": "3"}),
              20: lambda: sim._handle("pushing", {"command": "pushall", "sequence_id": "4"})}
    for tick in range(30):
        script.get(tick, lambda: None)()
        sim.tick()
    return published


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_report_tracker_gives_the_same_state_as_a_full_merge(profile):
    tracker, reference = ReportTracker(), BambuReport()
    states = set()
    for payload in recorded_reports(profile):
        tracker.feed(decode_message(payload))
        reference.feed(payload)
        expected = reference.normalised()
        assert tracker.print == reference.print
        assert tracker.state == expected
        states.add(expected.state)
    assert {PrinterState.PREPARING, PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.NEEDS_ATTENTION,
            PrinterState.FINISHED, PrinterState.CANCELLED} <= states
    assert tracker.shortcuts > 10  # telemetry-only reports took the cheap path


def test_keys_outside_the_normalise_inputs_do_not_change_the_state():
    for name in MODEL_REPORTS.values():
        body, _version = bambu_corpus_report(name)
        for gcode_state in ("IDLE", "RUNNING", "PAUSE", "FAILED"):
            state = dict(copy.deepcopy(body), gcode_state=gcode_state)
            inputs_only = {key: value for key, value in state.items() if key in NORMALISE_INPUTS}
            assert len(inputs_only) < len(state)
            assert normalise(inputs_only) == normalise(state)


def test_report_tracker_refuses_bad_telemetry_and_keeps_its_state():
    tracker = ReportTracker()
    body, _version = bambu_corpus_report(MODEL_REPORTS["A1"])
    tracker.feed({"print": dict(body, command="push_status", msg=0)})
    before_state, before_print = tracker.state, copy.deepcopy(tracker.print)
    with pytest.raises(ReportError, match="nozzle_temper"):
        tracker.feed({"print": {"nozzle_temper": "hot", "command": "push_status", "msg": 1}})
    assert tracker.state == before_state and tracker.print == before_print
    tracker.feed({"print": {"nozzle_temper": 201.5, "command": "push_status", "msg": 1}})
    assert tracker.state.nozzle_temp_c == 201.5 and tracker.state.state == before_state.state


class _Recorder:
    def __init__(self):
        self.submitted = []

    def submit(self, function, member):
        self.submitted.append(member)


class _Member:
    def __init__(self, name):
        self.name = name


def test_connects_are_paced_by_a_token_bucket():
    network = MqttNetwork(name="paced", connects_per_second=10, connect_burst=2)
    network._executor = _Recorder()
    members = [_Member(i) for i in range(10)]
    network.members.update(members)
    for member in members:
        network.request_connect(member)
    network.members.discard(members[1])  # removed while waiting: skipped without using a token
    t0 = network._refilled
    network._dispatch_connects(t0)
    assert [m.name for m in network._executor.submitted] == [0, 2]  # the burst
    network._dispatch_connects(t0 + 0.1)
    assert [m.name for m in network._executor.submitted] == [0, 2, 3]  # one token per 0.1 s
    network._dispatch_connects(t0 + 5.0)
    assert [m.name for m in network._executor.submitted] == [0, 2, 3, 4, 5]  # never more than the burst
    assert network.stats["connects"] == 5


def test_network_settings_are_validated():
    with pytest.raises(ValueError, match="connects_per_second"):
        MqttNetwork(connects_per_second=0)
    with pytest.raises(ValueError, match="connect_threads"):
        MqttNetwork(connect_threads=0)


def test_one_network_thread_serves_a_fleet(tmp_path):
    count = 16
    fleet = BambuFleetSimulator(count=count, host="127.0.0.1", port=0, access_code=CODE, tick_seconds=0.1)
    users = {"bblp": CODE, **{p.serial: CODE for p in fleet.printers}}
    serials = [p.serial for p in fleet.printers]
    # TLS for the connections under test, as with real printers; the fake printers publish on a plain listener.
    with MosquittoBroker(tmp_path / "broker", users=users, tls_names=serials, plain_port=free_port()) as broker:
        for printer in fleet.printers:
            printer.port = broker.plain_port
        threads_before = threading.active_count()
        fleet.start()
        network = MqttNetwork(name="fleet-test", connects_per_second=50, connect_threads=2).start()
        states: dict[int, list] = {}
        lock = threading.Lock()

        def on_event(event):
            if isinstance(event, StateEvent):
                with lock:
                    states.setdefault(event.printer_id, []).append(event.state)

        connections = [BambuConnection(printer_id=i, host=broker.host, port=broker.port, serial=p.serial,
                                       access_code=CODE, on_event=on_event, tls=True, ca_file=str(broker.ca_file),
                                       network=network).start()
                       for i, p in enumerate(fleet.printers)]
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(len(states.get(i, [])) >= 3 for i in range(count)):
                time.sleep(0.05)
            assert all(len(states.get(i, [])) >= 3 for i in range(count)), "every printer reports through the loop"
            assert all(c.connected.is_set() for c in connections)
            # Two network loops and their connector threads (4 + 2), not threads per printer or connection.
            assert threading.active_count() - threads_before <= 8 < count
            assert {s.state for i in range(count) for s in states[i]} == {PrinterState.IDLE}
            assert len(network.members) == count
        finally:
            for connection in connections:
                connection.stop()
            assert network.members == set() and not any(c.client.socket() for c in connections)
            network.stop()
            fleet.stop()


class _StubConnection:
    def __init__(self, **options):
        self.options = options
        self.connected = threading.Event()

    def start(self):
        return self

    def stop(self, timeout=None):
        pass

    def forget(self, sequence_id):
        pass

    def send_command(self, action, params=None):
        self.sent = (action, params)
        return "7"


def _printer(index):
    return services.printer_create(name=f"P{index}", driver=Driver.BAMBU, host="127.0.0.1", port=8883,
                                   serial=f"01S00C9000001{index:02d}", secret=CODE)


def _state(state=PrinterState.IDLE, nozzle=25.0):
    return NormalisedState(state=state, nozzle_temp_c=nozzle)


@pytest.mark.django_db
def test_changes_are_written_at_once_and_telemetry_within_the_budget(settings, monkeypatch):
    settings.PRINTER_STATE_WRITE_SECONDS = 0
    monkeypatch.setattr(listener_module, "TELEMETRY_STEP_SECONDS", 0)
    monkeypatch.setattr(listener_module, "WRITE_BATCH", 1)  # one printer a batch: the budget decides
    printers = [_printer(i) for i in range(6)]
    running = Listener(connection_factory=_StubConnection)
    try:
        running.step()
        assert set(running.slots) == {p.pk for p in printers}
        base = timezone.now() + timedelta(minutes=1)  # later than anything recorded at creation
        for i, printer in enumerate(printers):
            running.events.put(StateEvent(printer.pk, _state(), base + timedelta(seconds=i)))
        running.step()
        assert PrinterLiveState.objects.filter(state=PrinterState.IDLE).count() == 6  # changes: all at once

        # Telemetry for all six, and a real change on the last one.
        for i, printer in enumerate(printers[:5]):
            running.events.put(StateEvent(printer.pk, _state(nozzle=200.0 + i), base + timedelta(seconds=10 + i)))
        running.events.put(StateEvent(printers[5].pk, _state(PrinterState.BUSY), base + timedelta(seconds=20)))
        running.step()
        assert PrinterLiveState.objects.get(printer=printers[5]).state == PrinterState.BUSY
        written = [p.pk for p in printers[:5] if PrinterLiveState.objects.get(printer=p).nozzle_temp_c >= 200]
        assert len(written) == 1  # the budget is spent: one telemetry update per step
        for _ in range(4):
            running.step()
        temps = [PrinterLiveState.objects.get(printer=p).nozzle_temp_c for p in printers[:5]]
        assert temps == [200.0, 201.0, 202.0, 203.0, 204.0]  # the rest follows, nothing is lost
        assert StateTransition.objects.filter(to_state=PrinterState.BUSY).count() == 1
    finally:
        running.close()


@pytest.mark.django_db
def test_shards_split_the_fleet_and_its_commands_without_overlap():
    from printers.choices import CommandAction, CommandStatus
    from printers.models import PrinterCommand

    printers = [_printer(i) for i in range(5)]
    shards = [Listener(connection_factory=_StubConnection, shard=(index, 2)) for index in range(2)]
    try:
        for shard in shards:
            shard.reconcile()
        served = [set(shard.slots) for shard in shards]
        assert served[0].isdisjoint(served[1]) and served[0] | served[1] == {p.pk for p in printers}
        assert all(pk % 2 == 0 for pk in served[0]) and all(pk % 2 == 1 for pk in served[1])
        odd = next(p for p in printers if p.pk % 2 == 1)
        command = PrinterCommand.objects.create(printer=odd, action=CommandAction.PAUSE)
        shards[0]._take_commands()  # not its printer: the command waits for the other shard
        command.refresh_from_db()
        assert command.status == CommandStatus.PENDING
        shards[1]._take_commands()
        command.refresh_from_db()
        assert command.status == CommandStatus.SENT
    finally:
        for shard in shards:
            shard.close()
    with pytest.raises(ValueError, match="Invalid shard"):
        Listener(connection_factory=_StubConnection, shard=(2, 2))


def test_run_printers_refuses_a_bad_shard():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--shard"):
        call_command("run_printers", "--shard", "2/2")


def test_run_printers_refuses_a_connect_rate_of_zero(settings):
    from django.core.management import CommandError, call_command

    settings.BAMBU_CONNECTS_PER_SECOND = 0
    with pytest.raises(CommandError, match="BAMBU_CONNECTS_PER_SECOND"):
        call_command("run_printers")


def test_simulate_printers_splits_the_fleet_over_processes(tmp_path):
    import subprocess
    import sys

    from django.conf import settings

    serials = [f"{prefix}SIM{index:09d}" for index, prefix in zip(range(1, 6), ["00M", "039"] * 3, strict=False)]
    with MosquittoBroker(tmp_path / "broker", users={"bblp": CODE, **{s: CODE for s in serials}}) as broker:
        result = subprocess.run(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "simulate_printers", "--bambu", "5",
             "--processes", "2", "--port", str(broker.port), "--access-code", CODE, "--seconds", "1"],
            capture_output=True, text=True, timeout=60, cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    printed = sorted(line.split("serial=")[1].split()[0] for line in result.stdout.splitlines() if "serial=" in line)
    assert printed == sorted(serials)  # each printer exactly once, across both processes
    assert result.stdout.count("simulate_printers: stopped.") == 2


@pytest.mark.django_db
def test_states_are_written_in_batches_and_one_by_one_when_a_batch_fails(settings, monkeypatch):
    settings.PRINTER_STATE_WRITE_SECONDS = 0
    printers = [_printer(i) for i in range(4)]
    running = Listener(connection_factory=_StubConnection)
    calls = []
    real = services.printer_apply_states
    monkeypatch.setattr(services, "printer_apply_states",
                        lambda **kwargs: calls.append(len(kwargs["reports"])) or real(**kwargs))
    try:
        running.step()
        base = timezone.now() + timedelta(minutes=1)
        for printer in printers:
            running.events.put(StateEvent(printer.pk, _state(), base))
        running.events.put(StateEvent(printers[0].pk, _state(PrinterState.BUSY), base + timedelta(seconds=1)))
        running.step()
        assert calls == [4, 1]  # every printer's first state together, then the next one
        first = StateTransition.objects.filter(printer=printers[0]).order_by("at")
        assert list(first.values_list("to_state", flat=True)) == [PrinterState.IDLE, PrinterState.BUSY]
        for printer in printers:
            running.events.put(StateEvent(printer.pk, _state(nozzle=180.0), base + timedelta(seconds=5)))
        running.step()
        assert calls[2:] == [1, 3]  # the busy printer idle again (a change) first, then three telemetry updates
        assert list(PrinterLiveState.objects.values_list("nozzle_temp_c", flat=True).distinct()) == [180.0]

        def broken(**kwargs):
            if len(kwargs["reports"]) > 1:
                raise RuntimeError("database hiccup")
            return real(**kwargs)

        monkeypatch.setattr(services, "printer_apply_states", broken)
        for printer in printers:
            running.events.put(StateEvent(printer.pk, _state(nozzle=190.0), base + timedelta(seconds=10)))
        running.step()
        assert list(PrinterLiveState.objects.values_list("nozzle_temp_c", flat=True).distinct()) == [190.0]
        assert running.stats["errors"] == 1 and not running._dirty
    finally:
        running.close()

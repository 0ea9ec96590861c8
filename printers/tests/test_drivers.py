"""The driver registry: every brand behind one interface, and a third brand that needs no other change."""

import io
import re
import threading
import time
from pathlib import Path

import pytest
from django.utils import timezone

from fablab.exceptions import InvalidInput
from printers import homeassistant, selectors, services, tasks
from printers.choices import CommandStatus, Driver, PrinterState
from printers.drivers import registry
from printers.drivers.base import (
    AckEvent,
    Capability,
    ConnectionMode,
    PrinterAccess,
    PrinterDriver,
    StateEvent,
    StorageFile,
)
from printers.files import printer_file_fetch, printer_files_list
from printers.listener import Listener
from printers.models import Printer, PrinterCommand, PrinterLiveState
from printers.state import NormalisedState, unified_state

pytestmark = pytest.mark.django_db


# --- the built-in drivers ---------------------------------------------------------------------------------


def test_builtin_drivers_are_registered_by_their_choice_value():
    bambu, prusa = registry.get(Driver.BAMBU), registry.get(Driver.PRUSALINK)
    assert (bambu.name, bambu.mode, bambu.default_port, bambu.default_username) == ("bambu", "push", 8883, "bblp")
    assert (prusa.name, prusa.mode, prusa.default_port, prusa.default_username) == ("prusalink", "poll", 80, "maker")
    assert bambu.manufacturer == "Bambu Lab" and prusa.manufacturer == "Prusa Research"
    assert bambu.can(Capability.LIGHT) and bambu.can(Capability.FILAMENT_MAPPING) and bambu.requires_serial
    assert not prusa.can(Capability.LIGHT) and not prusa.can(Capability.FILAMENT_MAPPING)
    for driver in (bambu, prusa):
        assert {Capability.FILE_LIST, Capability.FILE_DOWNLOAD, Capability.FILE_UPLOAD, Capability.START_FILE,
                Capability.JOB_CONTROL} <= driver.capabilities
    assert registry.names(mode=ConnectionMode.PUSH) == ["bambu"]
    assert registry.names(mode=ConnectionMode.POLL) == ["prusalink"]
    assert registry.brands(capability=Capability.LIGHT) == "Bambu"
    assert dict(registry.driver_choices()) == {"bambu": Driver.BAMBU.label, "prusalink": Driver.PRUSALINK.label}


def test_unknown_drivers_are_clear_errors():
    with pytest.raises(InvalidInput, match="No printer driver is called"):
        registry.get("octoprint")
    assert registry.find("octoprint") is None
    printer = Printer(name="Old", driver="octoprint", host="10.0.0.1")
    assert printer.effective_port is None
    assert "does not know" in services.command_refusal(printer=printer, action="pause")
    with pytest.raises(ValueError):
        registry.register(type("TooLong", (AcmeDriver,), {"name": "x" * 17})())


def test_a_driver_refuses_what_its_brand_cannot_do():
    bare = type("Bare", (PrinterDriver,), {"name": "bare", "label": "Bare", "brand": "Bare", "manufacturer": "Bare",
                                            "default_port": 1, "mode": ConnectionMode.POLL})()
    access = PrinterAccess(printer_id=1, name="B", host="h", port=1, secret="top-secret-9")
    for call in (lambda: bare.list_files(access), lambda: bare.poll(access),
                 lambda: bare.upload_file(access, name="a", source=io.BytesIO()),
                 lambda: bare.start_params(path="/a", plate=1, filament_mapping=[])):
        with pytest.raises(InvalidInput, match="Bare printers cannot"):
            call()
    assert "top-secret-9" not in repr(access)


def test_a_state_name_no_driver_knows_yet_is_busy_and_logged_once_per_brand(caplog):
    """Both drivers map their printer's own state names through one helper (newer firmware adds names)."""
    from printers.drivers.bambu.normalise import normalise as bambu_normalise
    from printers.drivers.prusalink import normalise as prusalink_normalise

    name = f"WARMING_UP_{time.monotonic_ns()}"  # a name no other test has logged in this process
    with caplog.at_level("WARNING", logger="printers.state"):
        assert bambu_normalise({"gcode_state": name}).state == PrinterState.BUSY
        assert bambu_normalise({"gcode_state": name.lower()}).state == PrinterState.BUSY
        assert prusalink_normalise({"printer": {"state": name}}).state == PrinterState.BUSY
        assert unified_state(name, {}, printer="PrusaLink", field="state") == PrinterState.BUSY
    assert [r.getMessage() for r in caplog.records if name in r.getMessage()] == [
        f"Bambu printer reported an unknown gcode_state '{name}'; shown as busy.",
        f"PrusaLink printer reported an unknown state '{name}'; shown as busy.",
    ]
    assert unified_state("IDLE", {"IDLE": PrinterState.IDLE}, printer="Acme", field="state") == PrinterState.IDLE


def test_no_brand_is_named_outside_the_drivers():
    """Brand code lives behind the driver interface (the demo may name brands for its sample printers)."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(("drivers/", "tests/", "migrations/")) or relative == "demo.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"Driver\.BAMBU|Driver\.PRUSALINK|driver ==", line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


# --- a third brand ------------------------------------------------------------------------------------------


class AcmeDriver(PrinterDriver):
    """A brand the app has never heard of, polled, with files and a light: all in memory."""

    name = "acme"
    label = "Acme (HTTP)"
    brand = "Acme"
    manufacturer = "Acme Printing Co."
    default_port = 7125
    default_username = "operator"
    mode = ConnectionMode.POLL
    capabilities = frozenset({Capability.JOB_CONTROL, Capability.LIGHT, Capability.FILE_LIST,
                              Capability.FILE_DOWNLOAD, Capability.FILE_UPLOAD, Capability.START_FILE})
    upload_suffixes = (".gcode",)

    def __init__(self):
        self.calls = []
        self.files = {"/jobs/widget.gcode": b"; widget\nG28\n"}
        self.job = ""
        self.paused = False

    def poll(self, access, *, job_key="", current_file=""):
        self.calls.append(("poll", access.host, access.port, access.username, access.secret))
        if not self.job:
            return NormalisedState(state=PrinterState.IDLE, raw_state="ready")
        return NormalisedState(state=PrinterState.PAUSED if self.paused else PrinterState.PRINTING,
                               raw_state="busy", job_key="j1", current_file=self.job.rsplit("/", 1)[1])

    def run_command(self, access, *, action, params, job_key=""):
        self.calls.append((action, params, job_key))
        if action == "project_file":
            self.job = params["path"]
        elif action in ("pause", "resume"):
            self.paused = action == "pause"
        elif action == "stop":
            self.job = ""

    def start_params(self, *, path, plate, filament_mapping, model=""):
        return {"path": path}

    def _entry(self, path):
        return StorageFile(path=path, name=path.rsplit("/", 1)[1], folder="/jobs", size_bytes=len(self.files[path]),
                           modified=timezone.now())

    def list_files(self, access):
        return [self._entry(path) for path in self.files]

    def download_file(self, access, *, path, destination_for):
        entry = self._entry(path)
        destination_for(entry).write(self.files[path])
        return entry

    def upload_file(self, access, *, name, source, size=None):
        self.files[f"/jobs/{name}"] = source.read()
        return self._entry(f"/jobs/{name}")


@pytest.fixture
def acme():
    driver = registry.register(AcmeDriver())
    yield driver
    registry.unregister(driver.name)


def test_a_third_brand_works_through_services_files_and_commands(acme, run_tasks, settings, tmp_path):
    settings.PRUSALINK_POLL_SECONDS = 60
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    printer = services.printer_create(name="Acme 1", driver="acme", host="10.0.0.5", secret="s3cret")
    assert ("acme", "Acme (HTTP)") in Printer._meta.get_field("driver").choices
    assert printer.effective_port == 7125
    assert services.printer_get_credentials(printer=printer).username == "operator"
    assert homeassistant.device_block(printer)["manufacturer"] == "Acme Printing Co."

    # polled by the polling task, like every printer whose driver polls
    assert list(selectors.printers_to_poll()) == [printer]
    assert tasks.poll_prusalink_printers() == "polled 1, errors 0"
    assert acme.calls == [("poll", "10.0.0.5", 7125, "operator", "s3cret")]
    assert PrinterLiveState.objects.get(printer=printer).state == PrinterState.IDLE

    # files: listing, download, upload
    assert [f.path for f in printer_files_list(printer=printer)] == ["/jobs/widget.gcode"]
    received = io.BytesIO()
    fetched = printer_file_fetch(printer=printer, path="/jobs/widget.gcode", destination_for=lambda f: received)
    assert fetched.name == "widget.gcode" and received.getvalue() == acme.files["/jobs/widget.gcode"]
    entry = services.printer_file_upload(printer=printer, name="part.gcode", source=io.BytesIO(b"G28\nG1 X1\n"))
    assert entry.path == "/jobs/part.gcode" and acme.files[entry.path] == b"G28\nG1 X1\n"
    with pytest.raises(InvalidInput, match=r"\.gcode"):
        services.printer_file_upload(printer=printer, name="part.stl", source=io.BytesIO(b"solid"))

    # commands: one path, carried out by a task through the driver, the state polled right after
    with pytest.raises(InvalidInput, match="no filament slot mapping"):
        services.printer_start_file(printer=printer, path=entry.path, filament_mapping=[0])
    with run_tasks():
        started = services.printer_start_file(printer=printer, path=entry.path)
    started.refresh_from_db()
    assert started.status == CommandStatus.SUCCEEDED
    live = PrinterLiveState.objects.get(printer=printer)
    assert live.state == PrinterState.PRINTING and live.current_file == "part.gcode"
    with run_tasks():
        light = services.printer_command_request(printer=printer, action="light", light_on=True)
        pause = services.printer_command_request(printer=printer, action="pause", idempotency_key="p1")
        again = services.printer_command_request(printer=printer, action="pause", idempotency_key="p1")
    assert pause.pk == again.pk
    assert [c.status for c in PrinterCommand.objects.filter(pk__in=[light.pk, pause.pk])] == [
        CommandStatus.SUCCEEDED] * 2
    assert ("light", {"mode": "on"}, "j1") in acme.calls and ("pause", {}, "j1") in acme.calls
    assert PrinterLiveState.objects.get(printer=printer).state == PrinterState.PAUSED


class AcmePushDriver(AcmeDriver):
    """The same brand, reporting by itself over a session the listener runs."""

    name = "acmepush"
    mode = ConnectionMode.PUSH

    def open_connection(self, access, *, on_event, network=None):
        return _AcmeSession(access, on_event)

    def ignored_command_error(self, *, signature_required):
        return "Acme printers ignore commands in maintenance mode."


class _AcmeSession:
    def __init__(self, access, on_event):
        self.access, self.on_event = access, on_event
        self.connected = threading.Event()
        self.sent = []

    def start(self):
        self.connected.set()
        self.on_event(StateEvent(self.access.printer_id, NormalisedState(state=PrinterState.PRINTING, job_key="7"),
                                 timezone.now()))
        return self

    def stop(self, timeout=5.0):
        self.connected.clear()

    def send_command(self, action, params=None):
        self.sent.append((action, params))
        sequence_id = str(len(self.sent))
        self.on_event(AckEvent(self.access.printer_id, sequence_id, "success"))
        return sequence_id

    def forget(self, sequence_id):
        pass


def test_a_third_brand_with_its_own_session_is_run_by_the_listener(settings):
    settings.PRINTER_RECONCILE_SECONDS = 0
    driver = registry.register(AcmePushDriver())
    running = Listener()
    try:
        printer = services.printer_create(name="Acme push", driver="acmepush", host="10.0.0.6", secret="k")
        running.step()
        assert PrinterLiveState.objects.get(printer=printer).state == PrinterState.PRINTING
        assert selectors.printers_to_poll().filter(pk=printer.pk).count() == 0
        command = services.printer_command_request(printer=printer, action="stop")
        running.step()  # sends it on the session ...
        running.step()  # ... and records the acknowledgement
        command.refresh_from_db()
        assert command.status == CommandStatus.SUCCEEDED
        assert running.slots[printer.pk].connection.sent == [("stop", {})]
    finally:
        running.close()
        registry.unregister(driver.name)

"""The one interface every printer driver implements, and the types drivers share with the app.

A driver is one object per brand, registered under its name (the value stored in `Printer.driver`)
in `printers.drivers.registry`. The rest of the app never names a brand: it asks the registry for
a printer's driver and calls it. A driver says

- who it is: `name`, `label`, `brand`, `manufacturer`, `default_port`, `default_username`;
- what the brand can do (`capabilities`, see `Capability`): pause/resume/stop a job, switch a
  light, map filament slots when a file starts, list, download and upload files, start a file;
- how the app hears from the printer (`mode`):
  - `ConnectionMode.PUSH`: the printer keeps a session open and reports by itself (Bambu MQTT).
    `open_connection` returns a `PushConnection`; the printer listener (`manage.py run_printers`)
    starts it, records the states it reports and sends the commands through it;
  - `ConnectionMode.POLL`: the app asks (PrusaLink HTTP). `poll` returns the current state (the
    polling task calls it) and `run_command` carries one command out at once (from a task);
- files: `list_files`, `download_file`, `upload_file`;
- starting a file: `start_params` checks a start request (path, plate, filament-slot mapping) and
  turns it into the parameters of a `project_file` command, which then travels like any other
  command (through the listener or a task, as above).

Drivers get a `PrinterAccess` (address and credentials, built by `services.printer_access`) and
never touch the database. Every failure is a domain error (`fablab.exceptions.ApplicationError`
or one of `printers.exceptions`) whose message can be shown to the operator.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO, ClassVar, Protocol

from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput
from printers.choices import CommandAction
from printers.state import NormalisedState


class ConnectionMode(StrEnum):
    PUSH = "push"  # a session the printer reports on by itself, run by the printer listener
    POLL = "poll"  # the app asks, from the polling task


class Capability(StrEnum):
    JOB_CONTROL = "job_control"  # pause, resume and stop the running job
    LIGHT = "light"  # a light the app can switch
    FILAMENT_MAPPING = "filament_mapping"  # a file starts with a mapping of its filaments to loaded slots
    FILE_LIST = "file_list"
    FILE_DOWNLOAD = "file_download"
    FILE_UPLOAD = "file_upload"
    START_FILE = "start_file"  # start a file already on the printer's storage


# The capability a printer needs for each command.
COMMAND_CAPABILITY = {
    CommandAction.PAUSE: Capability.JOB_CONTROL,
    CommandAction.RESUME: Capability.JOB_CONTROL,
    CommandAction.STOP: Capability.JOB_CONTROL,
    CommandAction.LIGHT: Capability.LIGHT,
    CommandAction.PROJECT_FILE: Capability.START_FILE,
}

UNUSED_SLOT = -1  # a filament of the file that no slot feeds


@dataclass(frozen=True)
class PrinterAccess:
    """What a driver needs to reach one printer; the secret never appears in its repr."""

    printer_id: int
    name: str
    host: str
    port: int
    serial: str = ""
    model: str = ""
    username: str = ""
    secret: str = field(default="", repr=False)
    auth_method: str = ""
    files_port: int | None = None  # a file transfer port other than the driver's default (None: the default)


@dataclass(frozen=True)
class StorageFile:
    """One file on a printer's storage, as its driver lists it."""

    path: str  # what the driver takes back: /cache/cube.gcode.3mf, /usb/CUBE~1.BGC
    name: str  # the name people know (PrusaLink's long name)
    folder: str  # the folder as shown, e.g. /cache or /usb/parts
    size_bytes: int | None  # None where the printer does not say in its listing
    modified: datetime | None  # aware (UTC)
    complete: bool = True  # False while the printer is still receiving it


# --- what a PUSH connection tells the listener --------------------------------------------------


@dataclass(frozen=True)
class StateEvent:
    """A readable report: the printer's normalised state."""

    printer_id: int
    state: NormalisedState
    at: datetime
    fingerprint: str = ""  # what a command is expected to change (state, stage, lights...)
    signature_required: bool = False  # the printer says it drops commands that are not signed
    first: bool = False  # the first readable report of this connection: a sync, not a change


@dataclass(frozen=True)
class OfflineEvent:
    """No report for too long, or the printer refused the credentials (auth: no retries until they change)."""

    printer_id: int
    reason: str
    at: datetime
    auth: bool = False


@dataclass(frozen=True)
class AckEvent:
    """The printer answered one of our commands."""

    printer_id: int
    sequence_id: str
    result: str  # "success" or the printer's word for a refusal
    reason: str = ""
    body: dict = field(default_factory=dict)


class PushConnection(Protocol):
    """One printer's session, run by the printer listener; `on_event` gets the events above."""

    connected: threading.Event

    def start(self) -> "PushConnection": ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def send_command(self, action: str, params: dict | None = None) -> str:
        """Send one command; returns the id its acknowledgement will carry. ConnectionError when not
        connected, ValueError for parameters the printer cannot take."""

    def forget(self, sequence_id: str) -> None:
        """Stop waiting for the acknowledgement of `sequence_id`."""


# --- the driver ----------------------------------------------------------------------------------


class PrinterDriver:
    """One printer brand. Subclasses set the class attributes and implement what `capabilities` promise;
    every other method refuses with a clear error."""

    name: ClassVar[str]  # the value stored in Printer.driver (at most 16 characters)
    label: ClassVar[str]  # shown where a driver is chosen
    brand: ClassVar[str]  # the brand in a sentence: "Only Bambu printers have a light ..."
    manufacturer: ClassVar[str]  # the maker's full name (Home Assistant devices)
    default_port: ClassVar[int]
    default_username: ClassVar[str] = ""
    mode: ClassVar[ConnectionMode]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    requires_serial: ClassVar[bool] = False  # the printer cannot be reached without its serial
    upload_suffixes: ClassVar[tuple[str, ...]] = ()  # file types the printer takes, lower case

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def can(self, capability: Capability | str) -> bool:
        return capability in self.capabilities

    def _unsupported(self, what: str) -> InvalidInput:
        return InvalidInput(_("%(brand)s printers cannot %(what)s through the app.")
                            % {"brand": self.brand, "what": what})

    # -- PUSH: a session run by the printer listener --

    def open_connection(self, access: PrinterAccess, *, on_event: Callable[[object], None],
                        network=None) -> PushConnection:
        """The session to one printer, not started yet (the listener starts it); it reports through
        `on_event`, on a network thread (the callback must not block).

        `network`: the listener's shared `printers.drivers.mqtt.MqttNetwork`, for drivers that speak MQTT.
        """
        raise self._unsupported(_("keep a connection"))

    def ignored_command_error(self, *, signature_required: bool) -> str:
        """What to tell the operator when a command got neither an acknowledgement nor an effect."""
        return _("The printer neither acknowledged the command nor changed.")

    # -- POLL: the app asks --

    def poll(self, access: PrinterAccess, *, job_key: str = "", current_file: str = "") -> NormalisedState:
        """The printer's state now. `job_key`/`current_file`: what was recorded last, so that a driver
        can skip reading the job's details while the job is the same."""
        raise self._unsupported(_("be polled"))

    def run_command(self, access: PrinterAccess, *, action: str, params: dict, job_key: str = "") -> None:
        """Carry out one command at once (POLL drivers; PUSH drivers send commands through their session)."""
        raise self._unsupported(_("take commands this way"))

    # -- files --

    def list_files(self, access: PrinterAccess) -> list[StorageFile]:
        raise self._unsupported(_("list their files"))

    def download_file(self, access: PrinterAccess, *, path: str,
                      destination_for: Callable[[StorageFile], BinaryIO]) -> StorageFile:
        """Write the file at `path` into `destination_for(entry)` (called once the file was found, with its
        size where the printer tells it; it may refuse by raising). Returns the entry; NotFound when the
        printer does not list `path`; PrinterUnreachable when the transfer breaks off or comes out short."""
        raise self._unsupported(_("send their files"))

    def upload_file(self, access: PrinterAccess, *, name: str, source: BinaryIO,
                    size: int | None = None) -> StorageFile:
        """Store `source` on the printer as `name` (replacing a file of that name); returns its entry."""
        raise self._unsupported(_("receive files"))

    # -- starting a file --

    def start_params(self, *, path: str, plate: int, filament_mapping: list[int], model: str = "") -> dict:
        """The parameters of the `project_file` command that starts `path` (InvalidInput for a request the
        printer cannot take). `filament_mapping` is already checked against the loaded slots."""
        raise self._unsupported(_("start files"))

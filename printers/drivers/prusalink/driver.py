"""The PrusaLink driver: the app polls the printer over HTTP (printers.md §2).

State: GET /api/v1/status, and /api/v1/job only when the job changed. Commands are carried out at
once, from a task: pause, resume and stop address the current job by its id; a file starts with
POST /api/v1/files/<storage>/<path>. Files: every storage with its folders (listed by their long
names, fetched through `refs.download`), uploads with PUT /api/v1/files/<storage>/<name>.
"""

import logging
import posixpath
from dataclasses import replace
from datetime import UTC, datetime
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from printers import conf
from printers.choices import AuthMethod, CommandAction, Driver
from printers.drivers.base import Capability, ConnectionMode, PrinterAccess, PrinterDriver, StorageFile
from printers.drivers.prusalink.client import DEFAULT_PORT, PrusaLinkClient, normalise
from printers.exceptions import PrinterConflict, PrinterUnreachable
from printers.state import NormalisedState

logger = logging.getLogger(__name__)

MAX_ENTRIES_PER_FOLDER = 2000
MAX_FOLDER_DEPTH = 8  # folders below a storage's root
MAX_FOLDERS = 200
JOB_ACTIONS = (CommandAction.PAUSE, CommandAction.RESUME, CommandAction.STOP)


def _from_timestamp(value: int | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _folder(client: PrusaLinkClient, storage: str, folder: str, shown: str) -> tuple[list[StorageFile], list[tuple]]:
    """The files of one folder (`folder`: its short-name path inside the storage, "" for the root) and its
    subfolders as (short-name path, shown path) pairs."""
    files, folders = [], []
    for remote in client.files(storage=storage, folder=folder)[:MAX_ENTRIES_PER_FOLDER]:
        inside = f"{folder}/{remote.name}" if folder else remote.name
        if remote.type.upper() == "FOLDER":
            folders.append((inside, f"{shown}/{remote.display_name or remote.name}"))
            continue
        path = remote.download if remote.download.startswith(f"/{storage}/") else f"/{storage}/{inside}"
        files.append(StorageFile(path=path, name=remote.display_name or remote.name, folder=shown, size_bytes=None,
                                 modified=_from_timestamp(remote.m_timestamp), complete=bool(remote.download)))
    return files, folders


def _storage_files(client: PrusaLinkClient, storage: str) -> list[StorageFile]:
    """Every file of a storage, folders included (MAX_FOLDER_DEPTH deep, MAX_FOLDERS folders at most)."""
    files, waiting, seen = [], [("", f"/{storage}", 0)], 0
    while waiting and seen < MAX_FOLDERS:
        folder, shown, depth = waiting.pop(0)
        seen += 1
        found, subfolders = _folder(client, storage, folder, shown)
        files += found
        if depth < MAX_FOLDER_DEPTH:
            waiting += [(inside, name, depth + 1) for inside, name in subfolders]
    if waiting:
        logger.warning("Listed only the first %s folders of storage %s; %s were left out.", MAX_FOLDERS, storage,
                       len(waiting))
    return files


def _broke_off(path: str, written: int, size: int | None) -> str:
    return _("The download of %(path)s broke off after %(got)s of %(size)s bytes: the file changed or vanished on "
             "the printer, or the connection dropped. Refresh the list and try again.") % {
        "path": path, "got": written, "size": size if size is not None else "?"}


class _Counting:
    """Counts what goes through to `target` (the count is all a broken-off download message needs)."""

    def __init__(self, target: BinaryIO):
        self.target, self.written = target, 0

    def write(self, chunk: bytes):
        result = self.target.write(chunk)
        self.written += len(chunk)
        return result


def _split(path: str) -> tuple[str, str]:
    """("usb", "PARTS~1/GEAR~1.BGC") from /usb/PARTS~1/GEAR~1.BGC; InvalidInput for anything else."""
    parts = (path or "").strip().split("/")
    if len(parts) < 3 or parts[0] or not parts[1] or any(part in ("", ".", "..") for part in parts[2:]) \
            or any(ord(ch) < 32 for ch in path):
        raise InvalidInput(_("Name a file on the printer's storage, e.g. /usb/BENCHY~1.BGC (see the file list)."))
    return parts[1], "/".join(parts[2:])


class PrusaLinkDriver(PrinterDriver):
    name = Driver.PRUSALINK.value
    label = Driver.PRUSALINK.label
    brand = "Prusa"
    manufacturer = "Prusa Research"
    default_port = DEFAULT_PORT
    default_username = "maker"
    mode = ConnectionMode.POLL
    capabilities = frozenset({Capability.JOB_CONTROL, Capability.FILE_LIST, Capability.FILE_DOWNLOAD,
                              Capability.FILE_UPLOAD, Capability.START_FILE})
    upload_suffixes = (".bgcode", ".gcode")

    def client(self, access: PrinterAccess, *, timeout: float | None = None) -> PrusaLinkClient:
        return PrusaLinkClient(
            host=access.host, port=access.port or DEFAULT_PORT, username=access.username or self.default_username,
            password=access.secret, use_api_key=access.auth_method == AuthMethod.API_KEY,
            timeout=timeout if timeout is not None else settings.PRINTER_HTTP_TIMEOUT_SECONDS,
        )

    # -- state and commands --

    def poll(self, access: PrinterAccess, *, job_key: str = "", current_file: str = "") -> NormalisedState:
        client = self.client(access)
        try:
            status = client.status()
            job = None
            status_job = status.get("job")
            if isinstance(status_job, dict) and status_job.get("id") is not None \
                    and (str(status_job["id"]) != job_key or not current_file):
                job = client.job()  # a new job: read its file name once
            state = normalise(status, job)
        finally:
            client.close()
        if job is None and current_file and state.job_key and state.job_key == job_key:
            state = replace(state, current_file=current_file)
        return state

    def run_command(self, access: PrinterAccess, *, action: str, params: dict, job_key: str = "") -> None:
        if action not in (*JOB_ACTIONS, CommandAction.PROJECT_FILE):
            raise self._unsupported(_("take the command %(action)s") % {"action": action})
        if action in JOB_ACTIONS and not job_key:
            raise PrinterConflict(_("The printer has no job."))
        client = self.client(access)
        try:
            if action == CommandAction.PROJECT_FILE:
                storage, inside = _split(params.get("path", ""))
                client.start_print(storage=storage, path=inside)
            else:
                getattr(client, action)(job_key)
        finally:
            client.close()

    def start_params(self, *, path: str, plate: int, filament_mapping: list[int], model: str = "") -> dict:
        _split(path)
        if plate != 1:
            raise InvalidInput(_("A PrusaLink printer prints the whole file; leave the plate at 1."))
        return {"path": path.strip()}

    # -- files --

    def list_files(self, access: PrinterAccess) -> list[StorageFile]:
        client = self.client(access)
        try:
            return [f for storage in client.storages() for f in _storage_files(client, storage)]
        finally:
            client.close()

    def download_file(self, access: PrinterAccess, *, path: str, destination_for) -> StorageFile:
        storage, inside = _split(path)
        client = self.client(access)
        try:
            if storage not in client.storages():
                raise NotFound(_("%(printer)s has no storage %(storage)s.") % {"printer": access.name,
                                                                              "storage": storage})
            listed = _folder(client, storage, posixpath.dirname(inside), posixpath.dirname(path))[0]
            entry = next((f for f in listed if f.path == path), None)  # only the file's own folder is listed
            if entry is None:
                raise NotFound(_("%(path)s is not on %(printer)s (any more). Refresh the file list.")
                               % {"path": path, "printer": access.name})
            size = client.file_info(storage=storage, path=inside).get("size")
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                entry = replace(entry, size_bytes=size)
            destination = _Counting(destination_for(entry))
            try:
                written = client.download(entry.path, destination)
            except PrinterUnreachable:  # it answered the listing a moment ago: the transfer itself failed
                raise PrinterUnreachable(_broke_off(path, destination.written, entry.size_bytes)) from None
        finally:
            client.close()
        if entry.size_bytes is not None and written != entry.size_bytes:
            raise PrinterUnreachable(_broke_off(path, written, entry.size_bytes))
        return entry

    def upload_file(self, access: PrinterAccess, *, name: str, source: BinaryIO,
                    size: int | None = None) -> StorageFile:
        client = self.client(access, timeout=float(conf.value("PRINTER_FILES_TIMEOUT_SECONDS")))
        try:
            storages = [s for s in client.storages() if s]  # also primes the digest nonce for the upload
            if not storages:
                raise PrinterConflict(_("%(printer)s has no storage to upload to; insert a USB stick.")
                                      % {"printer": access.name})
            storage = storages[0]
            client.upload(storage=storage, path=name, source=source, size=size)
        finally:
            client.close()
        return StorageFile(path=f"/{storage}/{name}", name=name, folder=f"/{storage}", size_bytes=size,
                           modified=None)

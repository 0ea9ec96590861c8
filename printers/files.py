"""Files on a printer's storage: list them, and fetch the bytes of one.

Driver-independent: Bambu printers are read over implicit FTPS (`drivers.bambu.ftps`, folders
/, /cache, /model, /timelapse), PrusaLink printers over HTTP (`drivers.prusalink`, each storage
with its folders, files fetched through their `refs.download`). A file path is what `printer_files_list`
returns (`/cache/cube.gcode.3mf`, `/usb/CUBE~1.BGC`); `printer_file_fetch` accepts only a path the printer
lists at that moment, so a made-up path (`/../etc/passwd`, `/usb/../x`) never reaches the printer.

Every file is listed; what a file may become (a catalog version, say) is decided by the caller, which
also says where the bytes go (`destination_for`) and may refuse a file there before any byte arrives.

Settings (read at call time): BAMBU_FTPS_PORT (990), PRINTER_FILES_TIMEOUT_SECONDS (20),
PRINTER_FILES_LOCK_WAIT_SECONDS (5): one transfer per printer at a time (printers.md §1.9);
another one waits that long, then is refused.
"""

import logging
import posixpath
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import BinaryIO

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from printers import conf, services
from printers.choices import Driver
from printers.drivers.bambu import ftps
from printers.exceptions import PrinterConflict, PrinterUnreachable
from printers.models import Printer

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 512
LOCK_EXPIRY_SECONDS = 15 * 60  # frees a printer whose transfer's process died without releasing it
MAX_ENTRIES_PER_FOLDER = ftps.MAX_ENTRIES_PER_FOLDER
MAX_FOLDER_DEPTH = 8  # PrusaLink folders below a storage's root
MAX_FOLDERS = 200


@dataclass(frozen=True)
class PrinterFile:
    path: str  # what printer_file_fetch takes, e.g. /cache/cube.gcode.3mf or /usb/CUBE~1.BGC
    name: str  # the name people know (PrusaLink's long name)
    size_bytes: int | None  # None where the printer does not say in its listing (PrusaLink)
    modified: datetime | None  # aware (UTC)
    folder: str
    downloadable: bool  # the printer hands the file out (PrusaLink: it gives a download reference)


# --- helpers -------------------------------------------------------------------------------------


def _setting(name: str):
    return conf.value(name)


class _Counted:
    """The caller's destination, counting what was written to it (a broken-off transfer says how far it got)."""

    def __init__(self, target: BinaryIO):
        self.target = target
        self.written = 0

    def write(self, chunk: bytes):
        result = self.target.write(chunk)
        self.written += len(chunk)
        return result


def clean_path(path) -> str:
    """The path as the printer lists it, or InvalidInput for anything that is not a plain absolute path."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(_("Name a file on the printer, e.g. /cache/cube.gcode.3mf (see the file list)."))
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(_("The path is too long (at most %(max)s characters).") % {"max": MAX_PATH_LENGTH})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path) or "\\" in path:
        raise InvalidInput(_("The path contains control characters or backslashes; copy it from the file list."))
    parts = path.split("/")
    if not path.startswith("/") or any(part in ("", ".", "..") for part in parts[1:]):
        raise InvalidInput(_("%(path)s is not a path the printer lists: use an absolute path such as "
                             "/cache/cube.gcode.3mf, without '.', '..' or empty parts.") % {"path": path})
    return path


@contextmanager
def _one_transfer(printer: Printer) -> Iterator[None]:
    """One file session per printer at a time (the printers accept very few connections).

    Across processes when the cache is shared (Redis in production); per process otherwise.
    """
    key = f"printers:files:{printer.pk}"
    token = secrets.token_hex(8)
    deadline = time.monotonic() + float(_setting("PRINTER_FILES_LOCK_WAIT_SECONDS"))
    while not cache.add(key, token, timeout=LOCK_EXPIRY_SECONDS):
        if time.monotonic() >= deadline:
            raise PrinterConflict(_("Another file transfer with %(printer)s is running. Try again when it is "
                                    "done.") % {"printer": printer.name})
        time.sleep(0.2)
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


# --- Bambu ---------------------------------------------------------------------------------------


def _bambu_storage(printer: Printer) -> ftps.BambuStorage:
    if not printer.serial:
        raise InvalidInput(_("%(printer)s has no serial number; enter it (the printer's certificate is named "
                             "after it).") % {"printer": printer.name})
    credentials = services.printer_get_credentials(printer=printer)
    return ftps.BambuStorage(
        host=printer.host, port=int(_setting("BAMBU_FTPS_PORT")), serial=printer.serial,
        access_code=credentials.secret, ca_file=conf.value("BAMBU_CA_FILE"),
        timeout=float(_setting("PRINTER_FILES_TIMEOUT_SECONDS")),
    )


def _from_entry(entry: ftps.StorageEntry) -> PrinterFile:
    return PrinterFile(path=entry.path, name=entry.name, size_bytes=entry.size_bytes, modified=entry.modified,
                       folder=entry.folder, downloadable=True)


def _bambu_list(printer: Printer) -> list[PrinterFile]:
    with _bambu_storage(printer) as storage:
        return [_from_entry(entry) for entry in storage.list_files(ftps.FOLDERS)]


def _bambu_fetch(printer: Printer, path: str, destination_for) -> PrinterFile:
    folder = posixpath.dirname(path) or "/"
    if folder not in ftps.FOLDERS:
        raise NotFound(_("%(path)s is not in a folder the app reads (%(folders)s).")
                       % {"path": path, "folders": ", ".join(ftps.FOLDERS)})
    with _bambu_storage(printer) as storage:
        printer_file = _pick(printer, [_from_entry(entry) for entry in storage.list_folder(folder)], path)
        destination = destination_for(printer_file)
        storage.download(printer_file.path, destination, expected_size=printer_file.size_bytes)
    return printer_file


# --- PrusaLink -----------------------------------------------------------------------------------


def _from_timestamp(value: int | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _prusalink_folder(client, storage: str, folder: str, shown: str) -> tuple[list[PrinterFile], list[tuple]]:
    """The files of one folder (`folder`: its short-name path inside the storage, "" for the root) and its
    subfolders as (short-name path, shown path) pairs."""
    files, folders = [], []
    for remote in client.files(storage=storage, folder=folder)[:MAX_ENTRIES_PER_FOLDER]:
        inside = f"{folder}/{remote.name}" if folder else remote.name
        if remote.type.upper() == "FOLDER":
            folders.append((inside, f"{shown}/{remote.display_name or remote.name}"))
            continue
        path = remote.download if remote.download.startswith(f"/{storage}/") else f"/{storage}/{inside}"
        files.append(PrinterFile(
            path=path, name=remote.display_name or remote.name, size_bytes=None,
            modified=_from_timestamp(remote.m_timestamp),
            folder=shown, downloadable=bool(remote.download),
        ))
    return files, folders


def _prusalink_files(client, storage: str) -> list[PrinterFile]:
    """Every file of a storage, folders included (MAX_FOLDER_DEPTH deep, MAX_FOLDERS folders at most)."""
    files, waiting, seen = [], [("", f"/{storage}", 0)], 0
    while waiting and seen < MAX_FOLDERS:
        folder, shown, depth = waiting.pop(0)
        seen += 1
        found, subfolders = _prusalink_folder(client, storage, folder, shown)
        files += found
        if depth < MAX_FOLDER_DEPTH:
            waiting += [(inside, name, depth + 1) for inside, name in subfolders]
    if waiting:
        logger.warning("Listed only the first %s folders of storage %s; %s were left out.", MAX_FOLDERS, storage,
                       len(waiting))
    return files


def _prusalink_list(printer: Printer) -> list[PrinterFile]:
    client = services.prusalink_client(printer=printer)
    try:
        return [f for storage in client.storages() for f in _prusalink_files(client, storage)]
    finally:
        client.close()


def _prusalink_fetch(printer: Printer, path: str, destination_for) -> PrinterFile:
    storage = path.split("/")[1]
    client = services.prusalink_client(printer=printer)
    try:
        if storage not in client.storages():
            raise NotFound(_("%(printer)s has no storage %(storage)s.") % {"printer": printer.name,
                                                                          "storage": storage})
        inside = path.split("/", 2)[2] if path.count("/") >= 2 else ""  # e.g. PARTS~1/GEAR~1.BGC
        listed = _prusalink_folder(client, storage, posixpath.dirname(inside), posixpath.dirname(path))[0] \
            if inside else []  # only the file's own folder is listed again
        printer_file = _pick(printer, listed, path)
        info = client.file_info(storage=storage, path=inside)
        size = info.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            printer_file = replace(printer_file, size_bytes=size)
        destination = destination_for(printer_file)
        try:
            written = client.download(printer_file.path, destination)
        except PrinterUnreachable:  # it answered the listing a moment ago: the transfer itself failed
            raise PrinterUnreachable(_broke_off(path, destination.written, printer_file.size_bytes)) from None
    finally:
        client.close()
    if printer_file.size_bytes is not None and written != printer_file.size_bytes:
        raise PrinterUnreachable(_broke_off(path, written, printer_file.size_bytes))
    return printer_file


def _broke_off(path: str, written: int, size: int | None) -> str:
    return _("The download of %(path)s broke off after %(got)s of %(size)s bytes: the file changed or vanished on "
             "the printer, or the connection dropped. Refresh the list and try again.") % {
        "path": path, "got": written, "size": size if size is not None else "?"}


# --- shared --------------------------------------------------------------------------------------


def _pick(printer: Printer, files: list[PrinterFile], path: str) -> PrinterFile:
    for printer_file in files:
        if printer_file.path == path:
            if not printer_file.downloadable:
                raise InvalidInput(_("%(printer)s does not hand out %(name)s for download.")
                                   % {"printer": printer.name, "name": printer_file.name})
            return printer_file
    raise NotFound(_("%(path)s is not on %(printer)s (any more). Refresh the file list.")
                   % {"path": path, "printer": printer.name})


def _driver(printer: Printer) -> str:
    if printer.driver not in (Driver.BAMBU, Driver.PRUSALINK):
        raise InvalidInput(_("%(printer)s has no file storage the app can read.") % {"printer": printer.name})
    return printer.driver


def printer_files_list(*, printer: Printer) -> list[PrinterFile]:
    """The files on the printer's storage, newest first."""
    driver = _driver(printer)
    with _one_transfer(printer):
        files = _bambu_list(printer) if driver == Driver.BAMBU else _prusalink_list(printer)
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(files, key=lambda f: (f.modified or oldest, f.path), reverse=True)


def printer_files_check(*, printer: Printer) -> None:
    """InvalidInput when the app cannot read this printer's storage (its driver has no files)."""
    _driver(printer)


def printer_file_fetch(*, printer: Printer, path: str,
                       destination_for: Callable[[PrinterFile], BinaryIO]) -> PrinterFile:
    """Download the file at `path` (as `printer_files_list` gives it) and return what the printer says of it.

    `destination_for(printer_file)` is called once the printer has confirmed the file (listed, with its
    size where it tells it), before any byte arrives: it returns where the bytes go (anything with
    `write(bytes)`), or raises to refuse the file, and then nothing is downloaded. An exception raised
    by that `write` (a size limit) ends the transfer and propagates unchanged.

    InvalidInput for a malformed path, NotFound for a path the printer does not list (any more),
    PrinterConflict while another transfer with the printer runs, PrinterUnreachable when the
    printer cannot be reached or the transfer breaks off.
    """
    path = clean_path(path)
    driver = _driver(printer)

    def counted(printer_file: PrinterFile) -> _Counted:
        return _Counted(destination_for(printer_file))

    with _one_transfer(printer):
        fetch = _bambu_fetch if driver == Driver.BAMBU else _prusalink_fetch
        printer_file = fetch(printer, path, counted)
    logger.info("Printer %s: fetched %s.", printer.pk, path)
    return printer_file

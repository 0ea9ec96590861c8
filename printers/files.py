"""Files on a printer's storage: list them, and fetch the bytes of one.

Driver-independent: each printer's driver lists and fetches its files (`drivers.base.PrinterDriver`:
Bambu over implicit FTPS, folders /, /cache, /model, /timelapse; PrusaLink over HTTP, each storage
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
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from django.core.cache import cache
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from printers import conf, services
from printers.drivers import registry
from printers.drivers.base import Capability, PrinterDriver, StorageFile
from printers.exceptions import PrinterConflict
from printers.models import Printer

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 512
LOCK_EXPIRY_SECONDS = 15 * 60  # frees a printer whose transfer's process died without releasing it


@dataclass(frozen=True)
class PrinterFile:
    path: str  # what printer_file_fetch takes, e.g. /cache/cube.gcode.3mf or /usb/CUBE~1.BGC
    name: str  # the name people know (PrusaLink's long name)
    size_bytes: int | None  # None where the printer does not say in its listing (PrusaLink)
    modified: datetime | None  # aware (UTC)
    folder: str
    downloadable: bool  # the printer hands the file out (PrusaLink: it gives a download reference)


# --- helpers -------------------------------------------------------------------------------------


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
    deadline = time.monotonic() + float(conf.value("PRINTER_FILES_LOCK_WAIT_SECONDS"))
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


# --- through the printer's driver ----------------------------------------------------------------


def _from_entry(entry: StorageFile) -> PrinterFile:
    return PrinterFile(path=entry.path, name=entry.name, size_bytes=entry.size_bytes, modified=entry.modified,
                       folder=entry.folder, downloadable=entry.complete)


def _pick(printer: Printer, files: list[PrinterFile], path: str) -> PrinterFile:
    for printer_file in files:
        if printer_file.path == path:
            if not printer_file.downloadable:
                raise InvalidInput(_("%(printer)s does not hand out %(name)s for download.")
                                   % {"printer": printer.name, "name": printer_file.name})
            return printer_file
    raise NotFound(_("%(path)s is not on %(printer)s (any more). Refresh the file list.")
                   % {"path": path, "printer": printer.name})


def _driver(printer: Printer) -> PrinterDriver:
    driver = registry.find(printer.driver)
    if driver is None or not (driver.can(Capability.FILE_LIST) and driver.can(Capability.FILE_DOWNLOAD)):
        raise InvalidInput(_("%(printer)s has no file storage the app can read.") % {"printer": printer.name})
    return driver


def printer_files_list(*, printer: Printer) -> list[PrinterFile]:
    """The files on the printer's storage, newest first."""
    driver = _driver(printer)
    with _one_transfer(printer):
        files = [_from_entry(entry) for entry in driver.list_files(services.printer_access(printer=printer))]
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

    def destination(entry: StorageFile) -> BinaryIO:
        return destination_for(_pick(printer, [_from_entry(entry)], path))

    with _one_transfer(printer):
        printer_file = _from_entry(driver.download_file(services.printer_access(printer=printer), path=path,
                                                        destination_for=destination))
    logger.info("Printer %s: fetched %s.", printer.pk, path)
    return printer_file

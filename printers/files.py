"""Files on a printer's storage: list them, and download one into the catalog.

Driver-independent: each printer's driver lists and fetches its files (`drivers.base.PrinterDriver`:
Bambu over implicit FTPS, folders /, /cache, /model, /timelapse; PrusaLink over HTTP, each storage
with its folders, files fetched through their `refs.download`). A file path is what `printer_files_list`
returns (`/cache/cube.gcode.3mf`, `/usb/CUBE~1.BGC`); an import accepts only a path the printer
lists at that moment, so a made-up path (`/../etc/passwd`, `/usb/../x`) never reaches the printer.

`printer_file_import_request` queues an import for a django-q2 task (`printer_file_import_run`),
recorded as a PrinterFileImport row that tells how it went; `printer_file_import` is the
import itself. An import downloads into a temporary file (removed whatever happens), refuses files larger than
the catalog's CATALOG_MAX_UPLOAD_BYTES while they arrive, and hands the complete file to
`catalog.services.variant_upload_sliced_file`, which stores it, deduplicates by SHA-256 and
reads its metadata (at once or in the background). With no variant given, a new catalog model
named after the file is made, with one variant; a refused upload leaves neither behind.

Settings (read at call time): BAMBU_FTPS_PORT (990), PRINTER_FILES_TIMEOUT_SECONDS (20),
PRINTER_FILES_LOCK_WAIT_SECONDS (5): one transfer per printer at a time (printers.md §1.9);
another one waits that long, then is refused.
"""

import logging
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from catalog.models import ModelVariant, VariantVersion
from fablab.exceptions import ApplicationError, InvalidInput, NotFound
from printers import services
from printers.choices import ImportStatus
from printers.drivers import registry
from printers.drivers.base import Capability, PrinterDriver, StorageFile
from printers.exceptions import PrinterConflict
from printers.models import Printer, PrinterFileImport

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 512
LOCK_EXPIRY_SECONDS = 15 * 60  # frees a printer whose transfer's process died without releasing it


@dataclass(frozen=True)
class PrinterFile:
    path: str  # what printer_file_import takes, e.g. /cache/cube.gcode.3mf or /usb/CUBE~1.BGC
    name: str  # the name people know (PrusaLink's long name), used for the catalog
    size_bytes: int | None  # None where the printer does not say in its listing (PrusaLink)
    modified: datetime | None  # aware (UTC)
    folder: str
    downloadable: bool  # a finished file the catalog takes


# --- helpers -------------------------------------------------------------------------------------


def _setting(name: str, default):
    return getattr(settings, name, default)


def _catalog_suffix(name: str) -> str | None:
    lowered = name.lower()
    for suffix in sorted(catalog_services.ACCEPTED_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return suffix
    return None


def _too_large(name: str, size: int | None, limit: int) -> InvalidInput:
    if size is None:
        return InvalidInput(_("%(name)s is larger than %(limit).0f MB, the most the catalog takes "
                              "(CATALOG_MAX_UPLOAD_MB). Nothing was stored.") % {"name": name, "limit": limit / 1e6})
    return InvalidInput(_("%(name)s is %(size).1f MB; the catalog takes at most %(limit).0f MB "
                          "(CATALOG_MAX_UPLOAD_MB). Nothing was stored.")
                        % {"name": name, "size": size / 1e6, "limit": limit / 1e6})


class _LimitedWriter:
    """Writes to `target` until more than `limit` bytes arrive, then refuses (ending the transfer)."""

    def __init__(self, target, *, limit: int, name: str):
        self.target, self.limit, self.name = target, limit, name
        self.written = 0

    def write(self, chunk: bytes) -> int:
        self.written += len(chunk)
        if self.written > self.limit:
            raise _too_large(self.name, None, self.limit)
        return self.target.write(chunk)


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
    deadline = time.monotonic() + float(_setting("PRINTER_FILES_LOCK_WAIT_SECONDS", 5))
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
                       folder=entry.folder, downloadable=entry.complete and _catalog_suffix(entry.name) is not None)


def _fetch(printer: Printer, driver: PrinterDriver, path: str, destination_for) -> PrinterFile:
    """Download `path` into `destination_for(printer_file)`, once the printer listed it as a file the catalog takes."""
    def destination(entry: StorageFile):
        return destination_for(_pick(printer, [_from_entry(entry)], path))

    return _from_entry(driver.download_file(services.printer_access(printer=printer), path=path,
                                            destination_for=destination))


# --- shared --------------------------------------------------------------------------------------


def _pick(printer: Printer, files: list[PrinterFile], path: str) -> PrinterFile:
    for printer_file in files:
        if printer_file.path == path:
            if not printer_file.downloadable:
                raise InvalidInput(_("%(name)s cannot go into the catalog: it takes finished .gcode, .bgcode, "
                                     ".3mf, .gcode.3mf and .stl files.") % {"name": printer_file.name})
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


def _stem(name: str) -> str:
    suffix = _catalog_suffix(name)
    stem = name[: -len(suffix)] if suffix else name
    return " ".join(stem.replace("_", " ").split())[:200] or name[:200]


def _new_variant(*, name: str, user) -> ModelVariant:
    stem = _stem(name)
    model = catalog_services.model_create(name=stem, created_by=user)
    base = (slugify(stem).upper()[:40].strip("-_") or "PRINT")
    for _attempt in range(5):
        sku = f"{base}-{secrets.token_hex(3).upper()}"
        if not ModelVariant.objects.filter(sku__iexact=sku).exists():
            return catalog_services.variant_create(model=model, name=_("Standard"), sku=sku)
    raise PrinterConflict(_("No free SKU could be found for %(name)s; create the variant first.") % {"name": stem})


def printer_file_import(*, printer: Printer, path: str, user, variant: ModelVariant | None = None) -> VariantVersion:
    """Download the file at `path` from the printer and add it to the catalog as a new version.

    `variant`: the catalog variant that gets the version; None makes a new model named after
    the file with one variant. Nothing is stored when the file is refused, too large, vanishes
    or the connection breaks.
    """
    path = clean_path(path)
    driver = _driver(printer)
    limit = settings.CATALOG_MAX_UPLOAD_BYTES
    with tempfile.NamedTemporaryFile(prefix="fablab-printer-file-", dir=settings.FILE_UPLOAD_TEMP_DIR) as temp:
        def destination_for(printer_file: PrinterFile) -> _LimitedWriter:
            if printer_file.size_bytes is not None and printer_file.size_bytes > limit:
                raise _too_large(printer_file.name, printer_file.size_bytes, limit)
            return _LimitedWriter(temp, limit=limit, name=printer_file.name)

        with _one_transfer(printer):
            printer_file = _fetch(printer, driver, path, destination_for)
        temp.flush()
        temp.seek(0)
        upload = File(temp, name=printer_file.name)
        note = _("Downloaded from printer %(printer)s: %(path)s") % {"printer": printer.name, "path": path}
        with transaction.atomic():
            target = variant if variant is not None else _new_variant(name=printer_file.name, user=user)
            version = catalog_services.variant_upload_sliced_file(variant=target, upload=upload, change_note=note,
                                                                  uploaded_by=user)
    logger.info("Printer %s: %s imported as version %s of variant %s.", printer.pk, path, version.number,
                version.variant_id)
    return version


# --- in the background ---------------------------------------------------------------------------


def printer_file_import_request(*, printer: Printer, path: str, user,
                                variant: ModelVariant | None = None) -> PrinterFileImport:
    """Queue the download of `path` into the catalog (`printer_file_import` in a background task).

    The path is checked at once (a malformed one is refused here); whether the file is on the
    printer, fits and is readable is found out by the task and recorded on the returned row.
    Asking again for a file of this printer that is still waiting or downloading returns that
    request instead of a second download.
    """
    path = clean_path(path)
    _driver(printer)
    with transaction.atomic():
        Printer.objects.select_for_update().filter(pk=printer.pk).first()  # one request at a time per printer
        # A download whose worker died (killed at the task timeout, restarted) would otherwise block this file.
        PrinterFileImport.objects.filter(
            printer=printer, status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING),
            created_at__lt=timezone.now() - timedelta(seconds=2 * settings.TASK_TIMEOUT_SECONDS),
        ).update(status=ImportStatus.FAILED, finished_at=timezone.now(),
                 error=_("The download did not finish in time (the worker stopped or was too busy). Try again."))
        pending = PrinterFileImport.objects.filter(
            printer=printer, path=path, status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)).first()
        if pending is not None:
            return pending
        request = PrinterFileImport.objects.create(printer=printer, path=path, variant=variant, requested_by=user)
        transaction.on_commit(lambda: _enqueue_import(request.pk))
    return request


def _enqueue_import(import_id: int) -> None:
    from django_q.tasks import async_task

    async_task("printers.tasks.run_file_import", import_id, task_name=f"printer file download {import_id}")


def printer_file_import_run(*, import_id: int) -> str:
    """Carry out a queued download (the task). Safe to run twice: only a waiting request is started."""
    claimed = PrinterFileImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING)
    if not claimed:
        return "not waiting"
    request = PrinterFileImport.objects.select_related("printer", "variant", "requested_by").get(pk=import_id)
    try:
        version = printer_file_import(printer=request.printer, path=request.path, user=request.requested_by,
                                      variant=request.variant)
    except ApplicationError as exc:
        request.status, request.error = ImportStatus.FAILED, str(exc.message)[:500]
    except Exception:  # noqa: BLE001 - recorded for the person waiting; the details go to the log
        logger.exception("Downloading %s from printer %s failed.", request.path, request.printer_id)
        request.status = ImportStatus.FAILED
        request.error = _("The download failed unexpectedly; the details are in the server log. Try again.")
    else:
        request.status, request.version = ImportStatus.SUCCEEDED, version
    request.finished_at = timezone.now()
    request.save(update_fields=["status", "error", "version", "finished_at"])
    return request.status

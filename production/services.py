"""Every write of production.

Moving a file from a printer into the catalog: `printer_file_import_request` queues it for a
django-q2 task (`printer_file_import_run`), recorded as a PrinterFileImport row that tells how it
went; `printer_file_import` is the move itself. The printers app fetches the bytes
(`printers.files.printer_file_fetch`, only a path the printer lists); this module decides whether
the catalog takes the file (the catalog's own rule, `catalog.services.sliced_file_suffix`),
downloads it into a temporary file (removed whatever happens), refuses files larger than
CATALOG_MAX_UPLOAD_BYTES, also while they arrive, and hands the complete file to
`catalog.services.variant_upload_sliced_file`, which stores it, deduplicates by SHA-256 and reads
its metadata (at once or in the background). With no variant given, a new catalog model named
after the file is made, with one variant; a refused upload leaves neither behind.
"""

import logging
import secrets
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from catalog.models import ModelVariant, VariantVersion
from fablab.exceptions import ApplicationError, Conflict, InvalidInput
from printers import files as printer_files
from printers.files import PrinterFile
from printers.models import Printer
from production.choices import IMPORT_PENDING, ImportStatus
from production.models import PrinterFileImport
from production.selectors import printer_file_importable

logger = logging.getLogger(__name__)

IMPORT_TASK = "production.tasks.run_file_import"


# --- the move itself -----------------------------------------------------------------------------


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


def _stem(name: str) -> str:
    suffix = catalog_services.sliced_file_suffix(name=name)
    stem = name[: -len(suffix)] if suffix else name
    return " ".join(stem.replace("_", " ").split())[:200] or name[:200]


def _new_variant(*, name: str, user) -> ModelVariant:
    stem = _stem(name)
    model = catalog_services.model_create(name=stem, created_by=user)
    base = (slugify(stem).upper()[:40].strip("-_") or "PRINT")
    for _attempt in range(5):
        try:
            return catalog_services.variant_create(model=model, name=_("Standard"),
                                                   sku=f"{base}-{secrets.token_hex(3).upper()}")
        except Conflict:  # that SKU is taken (checked before anything is written): draw another
            continue
    raise Conflict(_("No free SKU could be found for %(name)s; create the variant first.") % {"name": stem})


def printer_file_import(*, printer: Printer, path: str, user, variant: ModelVariant | None = None) -> VariantVersion:
    """Download the file at `path` from the printer and add it to the catalog as a new version.

    `variant`: the catalog variant that gets the version; None makes a new model named after
    the file with one variant. Nothing is stored when the file is refused, too large, vanishes
    or the connection breaks.
    """
    limit = settings.CATALOG_MAX_UPLOAD_BYTES
    with tempfile.NamedTemporaryFile(prefix="fablab-printer-file-", dir=settings.FILE_UPLOAD_TEMP_DIR) as temp:
        def destination_for(printer_file: PrinterFile) -> _LimitedWriter:
            if not printer_file_importable(printer_file):
                raise InvalidInput(_("%(name)s cannot go into the catalog: it takes finished .gcode, .bgcode, "
                                     ".3mf, .gcode.3mf and .stl files.") % {"name": printer_file.name})
            if printer_file.size_bytes is not None and printer_file.size_bytes > limit:
                raise _too_large(printer_file.name, printer_file.size_bytes, limit)
            return _LimitedWriter(temp, limit=limit, name=printer_file.name)

        printer_file = printer_files.printer_file_fetch(printer=printer, path=path, destination_for=destination_for)
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
    path = printer_files.clean_path(path)
    printer_files.printer_files_check(printer=printer)
    with transaction.atomic():
        Printer.objects.select_for_update().filter(pk=printer.pk).first()  # one request at a time per printer
        # A download whose worker died (killed at the task timeout, restarted) would otherwise block this file.
        PrinterFileImport.objects.filter(
            printer=printer, status__in=IMPORT_PENDING,
            created_at__lt=timezone.now() - timedelta(seconds=2 * settings.TASK_TIMEOUT_SECONDS),
        ).update(status=ImportStatus.FAILED, finished_at=timezone.now(),
                 error=_("The download did not finish in time (the worker stopped or was too busy). Try again."))
        pending = PrinterFileImport.objects.filter(printer=printer, path=path, status__in=IMPORT_PENDING).first()
        if pending is not None:
            return pending
        request = PrinterFileImport(printer=printer, path=path, variant=variant, requested_by=user)
        request.full_clean()
        request.save()
        transaction.on_commit(lambda: _enqueue_import(request.pk))
    return request


def _enqueue_import(import_id: int) -> None:
    from django_q.tasks import async_task

    async_task(IMPORT_TASK, import_id, task_name=f"printer file download {import_id}")


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

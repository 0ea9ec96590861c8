"""Every write of production.

The print queue: `print_job_create` queues a job (once per idempotency key and organization),
`print_job_transition` is the one move of its status (production.choices.ALLOWED_TRANSITIONS),
`print_job_cancel` / `print_job_requeue` / `print_job_set_priority` / `print_job_move` are what staff
and partners ask for, and `print_jobs_recheck` stores the feasibility of every waiting job
(production.feasibility), in queue order, after anything that changes the queue; after a change of stock or
printers, `print_jobs_recheck_request` has the same done in the background, spaced out. Each recheck
asks for the farm plan (`print_queue_replan_request`): `print_queue_replan` plans the waiting jobs with
production.planning in the background and stores each job's planned printer, start and finish.

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

import hashlib
import logging
import math
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.models import ModelVariant, VariantVersion
from fablab.exceptions import ApplicationError, Conflict, IllegalTransition, InvalidInput
from fablab.files import delete_stored
from fablab.states import check_transition
from fablab.validation import validate
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from inventory.choices import LocationKind, MovementKind, ProductKind, ProductMovementKind, SourceType
from inventory.matching import delta_e, match_slots, material_key, normalise_hex
from inventory.models import Location, Product, Spool
from printers import files as printer_files
from printers import selectors as printer_selectors
from printers import services as printer_services
from printers.files import PrinterFile
from printers.models import Printer, PrinterLiveState
from production import costs, feasibility
from production import selectors as production_selectors
from production.choices import (
    ALLOWED_TRANSITIONS,
    IMPORT_PENDING,
    WAITING_STATUSES,
    AttemptOutcome,
    ImportStatus,
    PrintJobStatus,
    Priority,
    Purpose,
    SlicerUploadStatus,
    SpoolSource,
)
from production.models import (
    PrintAttempt,
    PrinterFileImport,
    PrinterStation,
    PrintJob,
    QueueRecheck,
    QueueReplan,
    SlicerUpload,
    SlotAllocation,
    SpoolLoad,
    UnknownPrint,
)
from production.selectors import (
    plate_estimated_seconds,
    print_job_held_for_plan,
    print_job_queue,
    printer_duration_factors,
    printer_file_importable,
    printer_variant_success,
)

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


# --- uploads from slicers (production/octoprint.py) -----------------------------------------------

SLICER_NAME_MAX = 200
SLICER_FOLDER_MAX = 255


def _slicer_text(value, *, field: str, max_length: int) -> str:
    text = "" if value is None else str(value)
    if not text.isprintable():  # NUL, line breaks, other control and direction characters
        raise InvalidInput(_("The %(field)s must not contain control characters.") % {"field": field})
    if len(text) > max_length:
        raise InvalidInput(_("The %(field)s is longer than %(max)s characters.") % {"field": field, "max": max_length})
    return text


def _slicer_folder(folder: str) -> str:
    text = _slicer_text(folder, field=_("path"), max_length=SLICER_FOLDER_MAX).replace("\\", "/")
    parts = [part.strip() for part in text.split("/") if part.strip()]
    if any(part in (".", "..") for part in parts):
        raise InvalidInput(_("The path must not contain . or .. folders."))
    return "/".join(parts)


def _slicer_name(name: str) -> str:
    text = _slicer_text(name, field=_("file name"), max_length=SLICER_NAME_MAX).strip()
    if not text or text in (".", "..") or "/" in text or "\\" in text:
        raise InvalidInput(_("The file name is empty or not a plain file name."))
    return text


def _content_sha256(upload: File) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _slicer_version(*, variant: ModelVariant, upload: File, sha256: str, note: str, user=None) -> VariantVersion:
    """The variant's new version of this file; its current version when that already is this very file."""
    current = variant.current_version
    if current is not None and current.sliced_file.sha256 == sha256:
        return current  # sent again (to print it again): nothing new for the catalog
    return catalog_services.variant_upload_sliced_file(variant=variant, upload=upload, change_note=note,
                                                       uploaded_by=user)


def _slicer_print(*, row: SlicerUpload, version: VariantVersion) -> PrintJob | None:
    """Queue the version once (the slicer asked to print it); None when its file cannot be printed as it is."""
    try:
        print_job_check_plate(version=version, plate=1)
    except InvalidInput as exc:
        logger.info("Upload %s is not queued: %s", row.pk, exc.message)
        return None
    return print_job_create(version=version, organization=row.organization, reference=str(row)[:200],
                            notes=_("Sent from a slicer."))


@transaction.atomic
def slicer_upload_receive(*, organization, upload: File, folder: str = "",
                          print_requested: bool = False) -> SlicerUpload:
    """Take a file a slicer sent: into the catalog variant its folder or name names, else into the inbox.

    With `print_requested`, a file that went into the catalog is queued at once (plate 1, normal
    priority); one in the inbox is queued when staff file it. A file the catalog would refuse (a
    name it does not take, damaged content, too large) is refused here too, and nothing is stored.
    """
    name = _slicer_name(getattr(upload, "name", ""))
    folder = _slicer_folder(folder)
    row = SlicerUpload(organization=organization, original_name=name, folder=folder, size_bytes=upload.size,
                       sha256=_content_sha256(upload), print_requested=bool(print_requested))
    variant = production_selectors.slicer_upload_variant(name=name, folder=folder)
    if variant is None:
        catalog_services.sliced_file_check(upload=upload)
        row.file.save(name, upload, save=False)
        try:
            validate(row)
            row.save()
        except BaseException:
            delete_stored(row.file.storage, row.file.name)
            raise
        logger.info("Upload %s (%s) from a slicer is in the inbox: no variant matches.", row.pk, row)
        return row
    row.version = _slicer_version(variant=variant, upload=upload, sha256=row.sha256,
                                  note=_("Sent from a slicer: %(name)s") % {"name": row})
    row.status, row.filed_at = SlicerUploadStatus.FILED, timezone.now()
    validate(row)
    row.save()
    if row.print_requested:
        row.job = _slicer_print(row=row, version=row.version)
        row.save(update_fields=["job"])
    logger.info("Upload %s (%s) from a slicer is version %s of variant %s.", row.pk, row, row.version.number,
                variant.pk)
    return row


@transaction.atomic
def slicer_upload_file(*, upload: SlicerUpload, variant: ModelVariant | None, user) -> SlicerUpload:
    """File an upload waiting in the inbox into `variant` (None: a new model named after the file).

    Queues it when the slicer asked to print it. Refused (Conflict) when it was filed already.
    """
    row = SlicerUpload.objects.select_for_update().select_related("organization").get(pk=upload.pk)
    if row.status != SlicerUploadStatus.INBOX or not row.file:
        raise Conflict(_("%(name)s is no longer in the inbox.") % {"name": row})
    target = variant if variant is not None else _new_variant(name=row.original_name, user=user)
    with row.file.open("rb") as handle:
        row.version = _slicer_version(variant=target, upload=File(handle, name=row.original_name), sha256=row.sha256,
                                      note=_("Sent from a slicer: %(name)s") % {"name": row}, user=user)
    if row.print_requested:
        row.job = _slicer_print(row=row, version=row.version)
    storage, stored_name = row.file.storage, row.file.name
    row.file = ""
    row.status, row.filed_at, row.filed_by = SlicerUploadStatus.FILED, timezone.now(), user
    row.save()
    transaction.on_commit(lambda: delete_stored(storage, stored_name))
    logger.info("Upload %s (%s) filed as version %s of variant %s.", row.pk, row, row.version.number, target.pk)
    return row


def slicer_upload_discard(*, upload: SlicerUpload) -> None:
    """Remove an upload's row, and its file when it still waits in the inbox."""
    storage, stored_name = upload.file.storage, upload.file.name
    upload.delete()
    if stored_name:
        transaction.on_commit(lambda: delete_stored(storage, stored_name))


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


# --- the print queue -----------------------------------------------------------------------------

MAX_IDEMPOTENCY_KEY = 200


def _clean_text(value, *, field: str, max_length: int) -> str:
    text = "" if value is None else str(value)
    if "\x00" in text:
        raise InvalidInput(_("%(field)s must not contain NUL characters.") % {"field": field},
                           extra={"fields": {field: [_("NUL characters are not allowed.")]}})
    if len(text) > max_length:
        raise InvalidInput(_("%(field)s is longer than %(max)s characters.") % {"field": field, "max": max_length},
                           extra={"fields": {field: [_("At most %(max)s characters.") % {"max": max_length}]}})
    return text.strip()


def print_job_check_plate(*, version: VariantVersion, plate: int) -> None:
    """Refuse (InvalidInput) a version that cannot be queued as it is, or a plate its file does not have."""
    sliced_file = version.sliced_file
    if sliced_file.sliced is False:
        raise InvalidInput(_("Version %(number)s of %(variant)s is a project file that was never sliced; upload "
                             "the sliced file (.gcode, .bgcode or .gcode.3mf) before queueing it.")
                           % {"number": version.number, "variant": version.variant})
    plates = feasibility.plate_count(sliced_file)
    if not 1 <= plate <= plates:
        raise InvalidInput(_("Plate %(plate)s does not exist: the file has %(count)s plate(s).")
                           % {"plate": plate, "count": plates}, extra={"fields": {"plate": [_("No such plate.")]}})


def _next_position() -> int:
    last = PrintJob.objects.filter(status__in=WAITING_STATUSES).aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


def print_job_create(*, version: VariantVersion, copies: int = 1, priority: str = Priority.NORMAL, plate: int = 1,
                     due_at=None, purpose: str = Purpose.BUSINESS, reference: str = "", notes: str = "",
                     queued_by=None, organization=None, idempotency_key: str = "") -> PrintJob:
    """Queue plate `plate` of `version`, printed `copies` times, at the end of its priority; then check it.

    `organization`: whose job it is (a partner's or the lab system's key; None for staff).
    `idempotency_key`: the same key of the same organization again returns the job it made (whatever
    the other arguments say), so a client that retries never queues twice.
    """
    key = _clean_text(idempotency_key, field="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY)
    if key:
        existing = PrintJob.objects.filter(organization=organization, idempotency_key=key).first()
        if existing is not None:
            return existing
    if isinstance(copies, bool) or not isinstance(copies, int):
        raise InvalidInput(_("copies must be a whole number."))
    print_job_check_plate(version=version, plate=plate)
    job = PrintJob(
        organization=organization, version=version, plate=plate, copies=copies, priority=priority, due_at=due_at,
        purpose=purpose, reference=_clean_text(reference, field="reference", max_length=200),
        notes=_clean_text(notes, field="notes", max_length=5000), queued_by=queued_by, idempotency_key=key,
        status=PrintJobStatus.QUEUED,
    )
    try:
        with transaction.atomic():
            job.position = _next_position()
            validate(job)
            job.save()
    except IntegrityError:
        twin = PrintJob.objects.filter(organization=organization, idempotency_key=key).first() if key else None
        if twin is None:
            raise
        return twin  # the same request, sent twice at the same time: the other one made it
    logger.info("Print job %s queued: %s ×%s (%s).", job.pk, version, copies, priority)
    print_jobs_recheck()
    job.refresh_from_db()
    return job


@transaction.atomic
def print_job_transition(*, job: PrintJob, status: str, reason: str = "") -> PrintJob:
    """Move the job to `status`; IllegalTransition (409) for a move ALLOWED_TRANSITIONS does not list."""
    locked = PrintJob.objects.select_for_update().get(pk=job.pk)
    check_transition(ALLOWED_TRANSITIONS, locked.status, status, what=_("The status of a print job"))
    next_copy = locked.status == PrintJobStatus.PRINTING and status == PrintJobStatus.QUEUED
    if next_copy:
        _check_next_copy(locked)
    now = timezone.now()
    locked.status = status
    fields = ["status", "updated_at"]
    if status == PrintJobStatus.PRINTING and locked.started_at is None:
        locked.started_at, fields = now, [*fields, "started_at"]
    if status in (PrintJobStatus.COMPLETED, PrintJobStatus.FAILED, PrintJobStatus.CANCELLED):
        locked.finished_at, fields = now, [*fields, "finished_at"]
    if next_copy:  # it keeps its place in the queue and the time its first copy started
        locked.printer, fields = None, [*fields, "printer"]
    elif status == PrintJobStatus.QUEUED:
        locked.position = _next_position()
        locked.printer, locked.started_at, locked.finished_at = None, None, None
        fields += ["position", "printer", "started_at", "finished_at"]
    if status not in WAITING_STATUSES and (locked.planned_printer_id or locked.planned_start or locked.planned_finish):
        locked.planned_printer, locked.planned_start, locked.planned_finish = None, None, None
        fields += ["planned_printer", "planned_start", "planned_finish"]
    locked.save(update_fields=fields)
    logger.info("Print job %s: %s → %s %s", locked.pk, job.status, status, reason)
    return locked


def _check_next_copy(job: PrintJob) -> None:
    """A printing job goes back to the queue only for a further copy, once the plate on the printer is done."""
    if job.copies_done >= job.copies:
        raise IllegalTransition(_("Print job #%(job)s has all its %(copies)s copies: it is completed, not queued "
                                  "again.") % {"job": job.pk, "copies": job.copies})
    if PrintAttempt.objects.filter(job=job, outcome=AttemptOutcome.RUNNING).exists():
        raise IllegalTransition(_("Print job #%(job)s is on a printer: it goes back to the queue for its next "
                                  "copy when the printer reports the plate done.") % {"job": job.pk})


def print_job_cancel(*, job: PrintJob) -> PrintJob:
    """Cancel a job that has not gone to a printer yet; its reserved filament goes to the jobs behind it.

    A job on a printer (sent, printing) is stopped at the printer; the printer's report then ends it.
    """
    if job.status in (PrintJobStatus.SENT, PrintJobStatus.PRINTING):
        raise Conflict(_("The job is on a printer already: stop the print at the printer, and its report ends "
                         "the job."))
    job = print_job_transition(job=job, status=PrintJobStatus.CANCELLED)
    print_jobs_recheck()
    return job


def print_job_requeue(*, job: PrintJob) -> PrintJob:
    """Put a failed or cancelled job back at the end of its priority (its attempts are kept)."""
    job = print_job_transition(job=job, status=PrintJobStatus.QUEUED)
    print_jobs_recheck()
    job.refresh_from_db()
    return job


def print_job_set_notes(*, job: PrintJob, notes: str) -> PrintJob:
    """Staff's notes on a job (any status)."""
    text = _clean_text(notes, field="notes", max_length=5000)
    PrintJob.objects.filter(pk=job.pk).update(notes=text, updated_at=timezone.now())
    job.notes = text
    return job


def _require_waiting(job: PrintJob, what: str) -> PrintJob:
    locked = PrintJob.objects.select_for_update().get(pk=job.pk)
    if locked.status not in WAITING_STATUSES:
        raise Conflict(_("%(what)s can only change while the job waits in the queue; it is %(status)s.")
                       % {"what": what, "status": locked.get_status_display()})
    return locked


def print_job_set_priority(*, job: PrintJob, priority: str) -> PrintJob:
    """Give a waiting job another priority (it keeps its position within the new one)."""
    if priority not in Priority.values:
        raise InvalidInput(_("Unknown priority %(priority)r; use one of %(choices)s.")
                           % {"priority": priority, "choices": ", ".join(Priority.values)})
    with transaction.atomic():
        locked = _require_waiting(job, _("The priority"))
        locked.priority = priority
        locked.save(update_fields=["priority", "updated_at"])
    print_jobs_recheck()
    return locked


def print_job_move(*, job: PrintJob, position: int) -> PrintJob:
    """Set a waiting job's hand-ordered position (smaller goes first within its priority)."""
    if isinstance(position, bool) or not isinstance(position, int) or not -10**9 <= position <= 10**9:
        raise InvalidInput(_("The position must be a whole number between -1000000000 and 1000000000."))
    with transaction.atomic():
        locked = _require_waiting(job, _("The position"))
        if locked.position == position:
            return locked
        locked.position = position
        locked.save(update_fields=["position", "updated_at"])
    print_jobs_recheck()
    return locked


def _store(job: PrintJob, result: feasibility.Feasibility, now) -> bool:
    if job.feasible == result.ok and job.feasibility_reasons == result.reasons:
        PrintJob.objects.filter(pk=job.pk).update(feasibility_checked_at=now)
        return False
    PrintJob.objects.filter(pk=job.pk).update(feasible=result.ok, feasibility_reasons=result.reasons,
                                              feasibility_checked_at=now)
    return True


def print_jobs_recheck() -> int:
    """Check every waiting job again, in queue order, and store the result; returns how many changed.

    Call it when stock, printers or the queue change: each job's filament is what the jobs ahead of it
    left, so one change can make any job behind it feasible or not.
    """
    jobs = list(print_job_queue())
    results = feasibility.evaluate_queue(jobs)
    now = timezone.now()
    changed = sum(_store(job, results[job.pk], now) for job in jobs)
    print_queue_replan_request()
    return changed


RECHECK_TASK = "production.tasks.recheck_queue"
RECHECK_SCHEDULE = "production: feasibility of the queue after a change"


def _request_debounced(row_model, *, task: str, schedule: str, task_name: str) -> bool:
    """Queue `task` in the background unless one waits already (claimed with one conditional UPDATE of the
    one row of `row_model`, a QueueRecheck or QueueReplan); returns whether this call queued it.

    It starts at once when the last run started PRODUCTION_RECHECK_SECONDS ago or more, else that long
    after the last one (a django-q2 schedule named `schedule`). A run that never started (its task lost)
    is given up after the task timeout, and the next change queues another. The task is queued once the
    transaction commits.
    """
    now = timezone.now()
    spacing = timedelta(seconds=max(0, settings.PRODUCTION_RECHECK_SECONDS))
    lost = now - spacing - timedelta(seconds=2 * settings.TASK_TIMEOUT_SECONDS)
    row_model.objects.get_or_create(pk=1)
    claimed = row_model.objects.filter(pk=1).filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lost)) \
        .update(queued_at=now)
    if not claimed:
        return False
    started = row_model.objects.filter(pk=1).values_list("started_at", flat=True).first()
    due = max(now, started + spacing) if started is not None else now
    transaction.on_commit(lambda: _enqueue_debounced(due, task=task, schedule=schedule, task_name=task_name))
    return True


def _enqueue_debounced(due, *, task: str, schedule: str, task_name: str) -> None:
    from django_q.models import Schedule
    from django_q.tasks import async_task

    if due <= timezone.now():
        async_task(task, task_name=task_name)
        return
    Schedule.objects.update_or_create(name=schedule, defaults={
        "func": task, "schedule_type": Schedule.ONCE, "repeats": -1, "next_run": due})


def _start_debounced(row_model) -> None:
    """A debounced run starts: a change from now on queues the next one."""
    row_model.objects.update_or_create(pk=1, defaults={"queued_at": None, "started_at": timezone.now()})


def print_jobs_recheck_request() -> bool:
    """Have the queue checked again in the background (RECHECK_TASK) because stock or printers changed;
    returns whether this call queued the check (False: one waits already and will see the change).

    At most one check waits at a time, so any number of changes from any process before it starts are
    checked together; checks are spaced by PRODUCTION_RECHECK_SECONDS (_request_debounced).
    """
    return _request_debounced(QueueRecheck, task=RECHECK_TASK, schedule=RECHECK_SCHEDULE,
                              task_name="feasibility of the queue")


def print_jobs_recheck_run() -> int:
    """The background check (RECHECK_TASK): the waiting check has started, so a change from now on queues the
    next one; then every waiting job is checked (print_jobs_recheck). Safe to run twice."""
    _start_debounced(QueueRecheck)
    return print_jobs_recheck()


# --- the farm plan ---------------------------------------------------------------------------------

REPLAN_TASK = "production.tasks.replan_queue"
REPLAN_SCHEDULE = "production: plan of the queue after a change"
# How much each priority's lateness counts in the plan.
PRIORITY_WEIGHTS = {Priority.URGENT: 8, Priority.HIGH: 4, Priority.NORMAL: 2, Priority.LOW: 1}


def print_queue_replan_request() -> bool:
    """Have the queue planned again in the background (REPLAN_TASK, print_queue_replan) because the queue,
    stock or printers changed; returns whether this call queued the plan (False: one waits already).

    Spaced out like print_jobs_recheck_request, with its own QueueReplan row: at most one plan waits, it
    starts at most once in PRODUCTION_RECHECK_SECONDS, and it is queued once the transaction commits;
    a request never plans on the spot.
    """
    return _request_debounced(QueueReplan, task=REPLAN_TASK, schedule=REPLAN_SCHEDULE, task_name="plan of the queue")


def print_queue_replan_run() -> int:
    """The background plan (REPLAN_TASK): a change from now on queues the next one; then the queue is
    planned (print_queue_replan). Returns how many jobs got a plan. Safe to run twice."""
    _start_debounced(QueueReplan)
    return len(print_queue_replan().assignments)


def _job_family(needs: feasibility.JobNeeds) -> str:
    """The material and colour of the plate's first slot: a printer changes over between families."""
    return needs.slots[0].label if needs.readable and needs.slots else ""


def _planner_printers(now: datetime, factors: "_DurationFactors") -> list[tuple[Printer, datetime, str | None]]:
    """The active printers, each with when it can start a next job and the family it holds then (if known).

    A printer that prints is free when its print ends (now + what it reports as remaining, else its start
    + the plate's estimate at its pace); one whose plate waits to be cleared, PRODUCTION_PLATE_WAIT_SECONDS
    from now; any other now.
    """
    printers = list(Printer.objects.filter(is_active=True).select_related("live").order_by("pk"))
    running = {attempt.printer_id: attempt for attempt in PrintAttempt.objects.filter(
        outcome=AttemptOutcome.RUNNING, printer__isnull=False).select_related("job__version__sliced_file")}
    waiting_plates = set() if settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED else set(
        PrinterStation.objects.filter(plate_clear=False).values_list("printer_id", flat=True))
    rows = []
    for printer in printers:
        attempt = running.get(printer.pk)
        available, family = now, None
        if attempt is not None:
            job = attempt.job
            family = _job_family(feasibility.job_needs(job))
            live = getattr(printer, "live", None)
            if live is not None and live.remaining_seconds:
                available = now + timedelta(seconds=live.remaining_seconds)
            else:
                estimate = plate_estimated_seconds(job.version.sliced_file, job.plate)
                if estimate is not None:
                    started = attempt.started_at or now
                    available = started + timedelta(seconds=estimate * factors.get(printer))
        elif printer.pk in waiting_plates:
            available = now + timedelta(seconds=max(0, settings.PRODUCTION_PLATE_WAIT_SECONDS))
        rows.append((printer, max(now, available), family))
    return rows


def _within(moment: datetime, now: datetime) -> datetime:
    """A time the planner takes (it refuses times years away from now, which only a typo makes)."""
    span = timedelta(days=3 * 365)
    return min(max(moment, now - span), now + span)


def print_queue_instance(*, now: datetime | None = None) -> tuple[dict, dict[str, PrintJob]]:
    """The planner's instance (production.planning exchange format, as JSON data) for the waiting feasible
    jobs and the active printers, and the jobs by their id in it.

    A job runs on each printer that takes its file (its driver, model, nozzle, height: what dispatch
    checks) for the plate's estimate × copies left × the printer's pace; a job whose file states no
    estimate, or that no printer takes, is left out (it gets no plan). Its family is its first slot's
    material and colour, its weight its priority's (PRIORITY_WEIGHTS), its due date its own.
    """
    from production.planning.exchange import MAX_DURATION_S

    now = now or timezone.now()
    factors = _DurationFactors()
    printers = _planner_printers(now, factors)
    jobs, by_id = [], {}
    for job in print_job_queue().filter(status=PrintJobStatus.QUEUED, feasible=True):
        needs = feasibility.job_needs(job)
        estimate = plate_estimated_seconds(job.version.sliced_file, job.plate)
        if not needs.readable or estimate is None:
            continue
        name = job.version.sliced_file.original_name
        durations = {}
        for printer, _available, _family in printers:
            if not printer_selectors.printer_takes_file(printer=printer, name=name):
                continue
            if feasibility.PrinterBook.refusal(printer, needs) is not None:
                continue
            seconds = estimate * max(1, job.copies_left) * factors.get(printer)
            durations[str(printer.pk)] = min(MAX_DURATION_S, max(1, math.ceil(seconds)))
        if not durations:
            continue
        by_id[str(job.pk)] = job
        jobs.append({"id": str(job.pk), "durations_s": durations, "family": _job_family(needs),
                     "due": _within(job.due_at, now).isoformat() if job.due_at else None,
                     "weight": PRIORITY_WEIGHTS.get(job.priority, 1)})
    instance = {
        "now": now.isoformat(), "timezone": settings.TIME_ZONE,
        "changeover_s": max(0, settings.PRODUCTION_CHANGEOVER_SECONDS),
        "shifts": list(settings.PRODUCTION_SHIFTS), "holidays": list(settings.PRODUCTION_HOLIDAYS),
        "printers": [{"id": str(printer.pk), "available_at": _within(available, now).isoformat(),
                      **({"family": family} if family else {})} for printer, available, family in printers],
        "jobs": jobs,
    }
    return instance, by_id


def print_queue_replan(*, time_limit: float | None = None):
    """Plan the queue (production.planning.plan on print_queue_instance) and store each waiting job's planned
    printer, start and finish; jobs that left the queue, or that the plan leaves out, lose theirs.

    Runs in the background (print_queue_replan_request), for settings.PRODUCTION_PLAN_SECONDS unless
    `time_limit` says otherwise; returns the planner's Plan. A job dispatched while the planner worked
    keeps no plan (only queued jobs are written).
    """
    from production.planning import parse_instance, plan

    limit = settings.PRODUCTION_PLAN_SECONDS if time_limit is None else time_limit
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= 600:
        raise InvalidInput(_("The planner's time limit must be more than 0 and at most 600 seconds."))
    data, jobs = print_queue_instance()
    result = plan(parse_instance(data), time_limit_s=float(limit))
    printers = {str(pk): pk for pk in Printer.objects.filter(is_active=True).values_list("pk", flat=True)}
    planned = []
    with transaction.atomic():
        for row in result.assignments:
            job = jobs[row.job]
            PrintJob.objects.filter(pk=job.pk, status=PrintJobStatus.QUEUED).update(
                planned_printer_id=printers[row.printer], planned_start=row.start, planned_finish=row.end)
            planned.append(job.pk)
        PrintJob.objects.exclude(pk__in=planned).filter(
            Q(planned_printer__isnull=False) | Q(planned_start__isnull=False) | Q(planned_finish__isnull=False)
        ).update(planned_printer=None, planned_start=None, planned_finish=None)
        QueueReplan.objects.update_or_create(pk=1, defaults={"planned_at": timezone.now(),
                                                             "solver": result.solver})
    logger.info("Queue planned: %s jobs, %s late, by %s in %ss.", len(planned), result.late_jobs, result.solver,
                result.seconds)
    return result


def print_job_check_feasibility(*, job: PrintJob) -> feasibility.Feasibility:
    """Check one job on demand (with the jobs ahead of it holding their filament) and store the result.

    A job that does not wait in the queue any more is not checked: its stored result is returned.
    """
    if job.status not in WAITING_STATUSES:
        return feasibility.Feasibility(ok=bool(job.feasible), reasons=list(job.feasibility_reasons or []))
    jobs = []
    for queued in print_job_queue():
        jobs.append(queued)
        if queued.pk == job.pk:
            break
    result = feasibility.evaluate_queue(jobs).get(job.pk)
    if result is None:  # it left the queue meanwhile
        job.refresh_from_db()
        return feasibility.Feasibility(ok=bool(job.feasible), reasons=list(job.feasibility_reasons or []))
    _store(job, result, timezone.now())
    job.feasible, job.feasibility_reasons = result.ok, result.reasons
    return result


# --- the printer's word: a printer job starts and ends ------------------------------------------
#
# printers sends job_started / job_finished after it recorded them (production.receivers). A job the
# printer started with a file dispatch sent is linked to that attempt; one started by hand with a file
# of the catalog is adopted as an unplanned print job; anything else is an UnknownPrint for staff.
# When it ends, the filament of each slot is booked on its spool (the whole plate for a completed print;
# for a failed or cancelled one what layers 1..k extruded, k the last reported layer; with
# PRODUCTION_BOOK_INSIDE_LAYER only the part of layer k its progress places it at) and a completed print's
# units go into the variant's product stock. Every booking carries an idempotency key made of the
# printer job and the slot, and the attempt is locked while it is booked, so a replayed signal, a
# restarted listener or two workers book once.

FILE_SUFFIXES = (".gcode.3mf", ".bgcode", ".gcode", ".3mf")
FINISHED_GOODS_LOCATION = "Finished goods"
UNITS_PER_PLATE = 1  # the catalog does not record units per plate yet: one plate is one unit


def _file_key(name: str) -> str:
    """A file name as printers report it, compared without folders, case or a sliced-file suffix."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    for suffix in FILE_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _booking_key(printer_job, what) -> str:
    return f"production:printer-job:{printer_job.pk}:{what}"


def _plate_grams(job: PrintJob) -> list[Decimal | None]:
    """Grams per slot (slot 1 first) of one print of the job's plate, as the sliced file states them."""
    fields = feasibility.plate_fields(job.version.sliced_file, job.plate)
    values = fields.get("filament_used_g")
    if not isinstance(values, list):
        values = [values] if values is not None else []
    return [feasibility._decimal(value) for value in values]


def _plate_slots(job: PrintJob) -> list[tuple[int, str, str | None, Decimal]]:
    """(slot, material, colour, grams) of each slot one print of the plate uses."""
    fields = feasibility.plate_fields(job.version.sliced_file, job.plate)
    types, colours = fields.get("filament_type"), fields.get("filament_colour")
    slots = []
    for index, grams in enumerate(_plate_grams(job)):
        if grams is None or grams <= 0:
            continue
        material = feasibility._at(types, index)
        slots.append((index + 1, str(material or "").strip(), normalise_hex(feasibility._at(colours, index)),
                      grams.quantize(Decimal("0.001"))))
    return slots


def _matched_spool(material: str, colour: str | None, grams: Decimal) -> Spool | None:
    """The spool of the best-matching filament in stock: the one with the least left that still has enough."""
    matches = match_slots(materials=[material], colours=[colour], grams_needed=[grams])
    best = matches[0].best if matches else None
    if best is None:
        return None
    spools = list(Spool.objects.filter(filament=best.filament, archived_at__isnull=True, remaining_grams__gt=0)
                  .order_by("remaining_grams", "id"))
    enough = [spool for spool in spools if spool.remaining_grams >= grams]
    return (enough or spools[::-1] or [None])[0]


def _loaded_spool(printer_id: int, tray: int | None, material: str, colour: str | None) -> Spool | None:
    """The spool staff loaded into `tray`; for an unknown tray, the loaded spool that fits the slot best."""
    loads = SpoolLoad.objects.filter(printer_id=printer_id).select_related("spool__filament")
    if tray is not None:
        load = loads.filter(tray=tray).first()
        return load.spool if load is not None else None
    fitting = []
    for load in loads:
        filament = load.spool.filament
        if material and material_key(filament.material) != material_key(material):
            continue
        difference = 0.0
        if colour is not None:
            difference = min((delta_e(colour, c) for c in filament.colours if normalise_hex(c)), default=99.0)
            if difference > settings.INVENTORY_COLOUR_TOLERANCE:
                continue
        fitting.append((difference, load.tray, load.spool))
    return min(fitting, key=lambda item: item[:2])[2] if fitting else None


def _tray_tags(printer_id: int) -> dict[int, str]:
    """The RFID tag each filament slot of the printer reports (printers' normalised `tag`), by slot."""
    live = PrinterLiveState.objects.filter(printer_id=printer_id).values_list("filament_slots", flat=True).first()
    return {entry["slot"]: str(entry["tag"]).strip().upper() for entry in live or []
            if isinstance(entry, dict) and isinstance(entry.get("slot"), int) and entry.get("tag")}


def _tagged_spool(printer_id: int, tray: int | None, material: str, colour: str | None) -> Spool | None:
    """The spool in stock whose RFID tag the printer reads in `tray`; for an unknown tray, the tagged spool
    in the printer that fits the slot best (material, then the closest colour within the tolerance)."""
    tags = _tray_tags(printer_id)
    if tray is not None:
        tags = {tray: tags[tray]} if tray in tags else {}
    spools = inventory_selectors.spools_by_rfid_tag(tags=tags.values())
    if tray is not None:
        return spools.get(tags[tray]) if tags else None
    fitting = []
    for number, tag in tags.items():
        spool = spools.get(tag)
        if spool is None or (material and material_key(spool.filament.material) != material_key(material)):
            continue
        difference = 0.0
        if colour is not None:
            difference = min((delta_e(colour, c) for c in spool.filament.colours if normalise_hex(c)), default=99.0)
            if difference > settings.INVENTORY_COLOUR_TOLERANCE:
                continue
        fitting.append((difference, number, spool))
    return min(fitting, key=lambda item: item[:2])[2] if fitting else None


def _allocate(attempt: PrintAttempt, trays: dict[int, int] | None = None) -> None:
    """Slot allocations of an attempt that has none: the spool staff loaded in the slot's tray, else the spool
    whose RFID tag the printer reads there, else the best match in stock."""
    if attempt.slots.exists():
        return
    rows = []
    for slot, material, colour, grams in _plate_slots(attempt.job):
        tray = (trays or {}).get(slot)
        spool = _loaded_spool(attempt.printer_id, tray, material, colour) if attempt.printer_id else None
        source = SpoolSource.LOADED
        if spool is None and attempt.printer_id:
            spool, source = _tagged_spool(attempt.printer_id, tray, material, colour), SpoolSource.RFID
        if spool is None:
            spool, source = _matched_spool(material, colour, grams), SpoolSource.MATCHED
        rows.append(SlotAllocation(attempt=attempt, slot=slot, tray=tray, spool=spool, grams_planned=grams,
                                   spool_source=source if spool is not None else ""))
    SlotAllocation.objects.bulk_create(rows)


def _station_for_update(printer_id: int) -> PrinterStation:
    PrinterStation.objects.get_or_create(printer_id=printer_id)
    return PrinterStation.objects.select_for_update().get(printer_id=printer_id)


def _catalog_version_for(file_name: str) -> VariantVersion | None:
    key = _file_key(file_name)
    if not key:
        return None
    names = [key + suffix for suffix in FILE_SUFFIXES]
    candidates = VariantVersion.objects.filter(
        sliced_file__original_name__iregex=r"^(" + "|".join(re.escape(n) for n in names) + r")$",
        sliced_file__sliced=True,
    ).select_related("sliced_file", "variant").order_by("-created_at", "-id")
    return candidates.first()


@transaction.atomic
def printer_job_started(*, printer_job) -> PrintAttempt | UnknownPrint:
    """A printer began `printer_job` (printers.PrinterJob): link it to the attempt dispatch sent, adopt a
    catalog file started by hand as an unplanned print job, or record an unknown print. Safe to repeat."""
    linked = PrintAttempt.objects.select_for_update().filter(printer_job=printer_job).first()
    if linked is not None:
        return linked
    unknown = UnknownPrint.objects.filter(printer_job=printer_job).first()
    if unknown is not None:
        return unknown
    station = _station_for_update(printer_job.printer_id)  # one start per printer at a time
    linked = PrintAttempt.objects.filter(printer_job=printer_job).first()  # a twin won the lock
    if linked is not None:
        return linked
    key = _file_key(printer_job.file_name)
    waiting = [attempt for attempt in PrintAttempt.objects.select_for_update(of=("self",)).filter(
        printer_id=printer_job.printer_id, printer_job__isnull=True, outcome=AttemptOutcome.RUNNING,
        job__status=PrintJobStatus.SENT).select_related("job").order_by("-id")
        if key and _file_key(attempt.file_name) == key]
    started_at = printer_job.started_at or timezone.now()
    if waiting:
        attempt = waiting[0]
        attempt.printer_job, attempt.started_at = printer_job, started_at
        attempt.save(update_fields=["printer_job", "started_at"])
        print_job_transition(job=attempt.job, status=PrintJobStatus.PRINTING)
        _allocate(attempt)
        logger.info("Printer job %s is attempt %s of print job %s.", printer_job.pk, attempt.number, attempt.job_id)
    else:
        version = _catalog_version_for(printer_job.file_name)
        if version is None:
            unknown = UnknownPrint.objects.create(printer_id=printer_job.printer_id, printer_job=printer_job,
                                                  file_name=printer_job.file_name[:255])
            logger.info("Printer job %s (%s) is an unknown print.", printer_job.pk, printer_job.file_name)
            station.plate_clear = False
            station.save(update_fields=["plate_clear", "updated_at"])
            return unknown
        job = PrintJob(version=version, copies=1, status=PrintJobStatus.PRINTING, printer_id=printer_job.printer_id,
                       started_at=started_at, unplanned=True, position=0,
                       notes=_("Started at the printer by hand: %(file)s") % {"file": printer_job.file_name[:200]})
        validate(job)
        job.save()
        attempt = PrintAttempt.objects.create(job=job, number=1, printer_id=printer_job.printer_id,
                                              printer_job=printer_job, started_at=started_at,
                                              file_name=printer_job.file_name[:255])
        _allocate(attempt)
        logger.info("Printer job %s adopted as unplanned print job %s.", printer_job.pk, job.pk)
    # A job started by hand means the operator cleared the plate; either way it is now in use.
    station.plate_clear = False
    station.save(update_fields=["plate_clear", "updated_at"])
    return attempt


def _extruded(attempt: PrintAttempt, printer_job, outcome: str) -> dict[int, Decimal]:
    """Grams per slot the attempt used: the whole plate when it completed, else up to where it stopped.

    A printer that reported layers: layers 1..k-1 and, when it also reported its progress (and
    PRODUCTION_BOOK_INSIDE_LAYER is on), the part of layer k that progress places it at
    (catalog_selectors.sliced_file_extruded_at); else all of layer k. A printer without layers:
    progress × the plate's grams.
    """
    job = attempt.job
    whole = {slot: grams for slot, _m, _c, grams in _plate_slots(job)}
    if outcome == AttemptOutcome.COMPLETED:
        return whole
    sliced_file = job.version.sliced_file
    layers = catalog_selectors.sliced_file_layer_count(sliced_file=sliced_file, plate=job.plate)
    if layers and printer_job.last_layer is not None:
        reached = printer_job.progress_reached
        progress = None  # never reported (0) or not used: all of layer k
        if settings.PRODUCTION_BOOK_INSIDE_LAYER and reached and reached > 0:
            progress = min(100.0, float(reached))
        through = catalog_selectors.sliced_file_extruded_at(
            sliced_file=sliced_file, plate=job.plate, layer=min(int(printer_job.last_layer), layers),
            progress_percent=progress)
        return {index + 1: Decimal(str(grams)).quantize(Decimal("0.001"))
                for index, grams in enumerate(through) if index + 1 in whole or grams > 0}
    share = Decimal(str(max(0.0, min(100.0, printer_job.progress_reached or 0.0)))) / 100
    return {slot: (grams * share).quantize(Decimal("0.001")) for slot, grams in whole.items()}


def _book_filament(attempt: PrintAttempt, printer_job, outcome: str) -> None:
    used = _extruded(attempt, printer_job, outcome)
    kind = MovementKind.USED if outcome == AttemptOutcome.COMPLETED else MovementKind.FAILED_PRINT
    problems = []
    allocations = SlotAllocation.objects.select_for_update(of=("self",)).filter(attempt=attempt)
    for allocation in allocations.select_related("spool"):
        grams = used.get(allocation.slot, Decimal("0"))
        if allocation.grams_booked is not None:
            continue
        if grams <= 0:  # the ledger keeps micrograms: any extruded amount is booked
            allocation.grams_booked = Decimal("0")
            allocation.save(update_fields=["grams_booked"])
            continue
        if allocation.spool is None:
            problems.append(_("slot %(slot)s: no spool in stock fits; choose one on the job")
                            % {"slot": allocation.slot})
            continue
        try:
            with transaction.atomic():
                inventory_services.spool_use(
                    spool=allocation.spool, grams_used=grams, kind=kind,
                    idempotency_key=_booking_key(printer_job, f"slot:{allocation.slot}"),
                    reason=_("Print job #%(job)s, slot %(slot)s") % {"job": attempt.job_id, "slot": allocation.slot},
                    source_type=SourceType.PRINT_JOB, source_id=str(attempt.job_id))
        except ApplicationError as exc:
            problems.append(_("slot %(slot)s: %(error)s") % {"slot": allocation.slot, "error": exc.message})
            continue
        allocation.grams_booked = grams
        allocation.save(update_fields=["grams_booked"])
    if problems:
        attempt.reason = ("; ".join(str(p) for p in problems))[:300]


def _finished_goods() -> Location:
    location = Location.objects.filter(parent__isnull=True, name=FINISHED_GOODS_LOCATION).first()
    if location is None:
        location = inventory_services.location_create(name=FINISHED_GOODS_LOCATION, kind=LocationKind.SHELF)
    return location


def _product_for(variant) -> Product:
    product = Product.objects.filter(variant=variant, kind=ProductKind.PRINTED).order_by("id").first()
    if product is not None:
        return product
    sku = variant.sku if not Product.objects.filter(sku=variant.sku).exists() else f"{variant.sku}-P{variant.pk}"
    return inventory_services.product_create(sku=sku, name=str(variant)[:200], kind=ProductKind.PRINTED,
                                             variant=variant)


def _book_units(attempt: PrintAttempt, printer_job) -> None:
    variant = attempt.job.version.variant
    with transaction.atomic():
        product = _product_for(variant)
        inventory_services.product_stock_book(
            product=product, location=_finished_goods(), kind=ProductMovementKind.PRODUCED,
            quantity=UNITS_PER_PLATE, idempotency_key=_booking_key(printer_job, "units"),
            reason=_("Print job #%(job)s") % {"job": attempt.job_id}, source_type=SourceType.PRINT_JOB,
            source_id=str(attempt.job_id))


_JOB_END = {AttemptOutcome.COMPLETED: PrintJobStatus.COMPLETED, AttemptOutcome.FAILED: PrintJobStatus.FAILED,
            AttemptOutcome.CANCELLED: PrintJobStatus.CANCELLED}


@transaction.atomic
def printer_job_finished(*, printer_job, outcome: str) -> PrintAttempt | UnknownPrint:
    """A printer job ended with `outcome` (completed, failed, cancelled): book what it used, once.

    Completed: each slot's grams of the plate on its spool and the printed units into the variant's
    product stock; the job counts one more copy done and goes back to the queue, keeping its place, while
    copies are left (the next one goes out when a plate is cleared), else it is completed. Failed or
    cancelled: the grams layers 1..k extruded, k the last reported layer (with PRODUCTION_BOOK_INSIDE_LAYER
    and a reported progress, only the part of layer k that progress places it at; progress × grams for a
    file without layers), no units, and the job ends so (staff re-queue it for the copies left). The plate then waits
    to be cleared. Safe to repeat.
    """
    if outcome not in _JOB_END:
        raise InvalidInput(_("A printer job ends completed, failed or cancelled, not %(outcome)r.")
                           % {"outcome": outcome})
    started = printer_job_started(printer_job=printer_job)  # a start nobody reported (or replayed) first
    if isinstance(started, UnknownPrint):
        UnknownPrint.objects.filter(pk=started.pk).update(outcome=outcome)
        started.outcome = outcome
        return started
    attempt = PrintAttempt.objects.select_for_update(of=("self",)).select_related("job__version__sliced_file",
                                                                      "job__version__variant").get(pk=started.pk)
    if attempt.booked_at is not None:
        return attempt
    _book_filament(attempt, printer_job, outcome)
    if outcome == AttemptOutcome.COMPLETED:
        _book_units(attempt, printer_job)
    attempt.outcome, attempt.booked_at = outcome, timezone.now()
    attempt.finished_at = printer_job.ended_at or attempt.booked_at
    attempt.save(update_fields=["outcome", "booked_at", "finished_at", "reason"])
    job = attempt.job
    if outcome == AttemptOutcome.COMPLETED:
        PrintJob.objects.filter(pk=job.pk).update(copies_done=F("copies_done") + 1)
        job.refresh_from_db(fields=["copies_done"])
    if job.status == PrintJobStatus.SENT:
        job = print_job_transition(job=job, status=PrintJobStatus.PRINTING)
    if job.status == PrintJobStatus.PRINTING:
        end = _JOB_END[outcome]
        if end == PrintJobStatus.COMPLETED and job.copies_done < job.copies:
            end = PrintJobStatus.QUEUED  # the next copy
        job = print_job_transition(job=job, status=end, reason=printer_job.end_reason)
        if end == PrintJobStatus.QUEUED:
            print_jobs_recheck()
    _cost_recorded(attempt, printer_job)
    station = _station_for_update(printer_job.printer_id)
    station.plate_clear = False
    station.save(update_fields=["plate_clear", "updated_at"])
    logger.info("Print job %s attempt %s ended %s; filament booked.", job.pk, attempt.number, outcome)
    return attempt


# --- the cost of a print -------------------------------------------------------------------------
#
# When an attempt ends and its filament is booked, its cost is computed (production.costs) from the grams
# booked per slot and the price per kg of each slot's spool, its printing time (the printer's real start and
# end, else the file's estimate for the plate, times the progress reached for a print that did not
# complete) and its printer's rates (its station's figures, else the PRODUCTION_* settings), and stored on
# the attempt with its inputs. The job's cost is the sum of its attempts' costs, so a failed attempt is
# carried into the units the job produced; a completed job sets its variant's product unit cost to the
# mean over the variant's recent completed jobs. A correction of a slot's spool computes it again.

COST_AMOUNT_FIELDS = ("cost_material", "cost_energy", "cost_machine", "cost_labour", "cost_total")
ESTIMATED_TIME_FIELD = "estimated_time_s"


def _cost_seconds(attempt: PrintAttempt, printer_job) -> tuple[Decimal, str]:
    """How long the attempt printed, and where that comes from."""
    if printer_job is not None and printer_job.observed_start and printer_job.ended_at is not None:
        seconds = (printer_job.ended_at - printer_job.started_at).total_seconds()
        return Decimal(max(0, round(seconds))), "printer"
    job = attempt.job
    estimate = feasibility._decimal(feasibility.plate_fields(job.version.sliced_file, job.plate)
                                    .get(ESTIMATED_TIME_FIELD))
    if estimate is None or estimate <= 0:
        return Decimal("0"), "unknown"
    if attempt.outcome == AttemptOutcome.COMPLETED:
        return estimate.quantize(Decimal("1"), rounding=ROUND_HALF_UP), "estimate"
    progress = printer_job.progress_reached if printer_job is not None else 0.0
    share = Decimal(str(max(0.0, min(100.0, progress or 0.0)))) / 100
    return (estimate * share).quantize(Decimal("1"), rounding=ROUND_HALF_UP), "estimate_progress"


def _cost_materials(attempt: PrintAttempt, currency: str) -> tuple[list[costs.MaterialLine], list[dict]]:
    lines, warnings = [], []
    for allocation in SlotAllocation.objects.filter(attempt=attempt).select_related("spool__filament"):
        if allocation.grams_booked is None:
            warnings.append(feasibility.reason(costs.SLOT_NOT_BOOKED, slot=allocation.slot))
            continue
        if allocation.spool is None:
            continue  # nothing was booked (0 g)
        filament = allocation.spool.filament
        price = filament.cost_per_kg
        if filament.currency != currency:
            warnings.append(feasibility.reason(costs.SLOT_OTHER_CURRENCY, slot=allocation.slot,
                                               filament=str(filament), filament_currency=filament.currency,
                                               currency=currency))
            price = None
        lines.append(costs.MaterialLine(slot=allocation.slot, grams=allocation.grams_booked, price_per_kg=price,
                                        spool=allocation.spool.code, filament=str(filament)[:200],
                                        currency=filament.currency))
    return lines, warnings


def print_attempt_cost_compute(*, attempt: PrintAttempt, printer_job=None) -> PrintAttempt:
    """Compute and store the cost of an attempt whose filament is booked, then its job's cost.

    `printer_job`: the printer's job it ran as (default: the attempt's). InvalidInput when the inputs give no
    cost (a figure out of range); Conflict for an attempt that has not ended.
    """
    attempt = PrintAttempt.objects.select_related("job__version__sliced_file", "job__version__variant",
                                                  "printer_job").get(pk=attempt.pk)
    if attempt.booked_at is None:
        raise Conflict(_("Attempt %(number)s of print job #%(job)s has not ended; its cost is computed when it "
                         "does.") % {"number": attempt.number, "job": attempt.job_id})
    currency = settings.PRODUCTION_CURRENCY
    materials, warnings = _cost_materials(attempt, currency)
    seconds, seconds_from = _cost_seconds(attempt, printer_job or attempt.printer_job)
    if seconds_from == "unknown":
        warnings.append(feasibility.reason(costs.TIME_UNKNOWN))
    inputs = costs.AttemptInputs(currency=currency, seconds=seconds, seconds_from=seconds_from,
                                 materials=tuple(materials), warnings=tuple(warnings),
                                 rates=production_selectors.printer_cost_rates(printer_id=attempt.printer_id))
    try:
        cost = costs.attempt_cost(inputs)
    except costs.CostError as exc:
        raise InvalidInput(exc.message) from None
    fields = cost.model_fields()
    PrintAttempt.objects.filter(pk=attempt.pk).update(**fields)
    for name, value in fields.items():
        setattr(attempt, name, value)
    print_job_cost_update(job=attempt.job)
    return attempt


def _attempt_cost(attempt: PrintAttempt) -> costs.Cost:
    return costs.Cost(currency=attempt.cost_currency, material=attempt.cost_material, energy=attempt.cost_energy,
                      machine=attempt.cost_machine, labour=attempt.cost_labour)


def print_job_cost_update(*, job: PrintJob) -> PrintJob:
    """Store the job's cost: the sum of its ended attempts' costs (failed ones included) and the cost of each
    good unit; a completed job then updates its variant's product unit cost. A job none of whose ended attempts
    could be costed has no cost (its inputs say why)."""
    job = PrintJob.objects.select_related("version__variant").get(pk=job.pk)
    ended = list(PrintAttempt.objects.filter(job=job, booked_at__isnull=False).order_by("number"))
    if not ended:
        return job
    priced = [attempt for attempt in ended if attempt.cost_total is not None]
    units = UNITS_PER_PLATE * sum(1 for attempt in ended if attempt.outcome == AttemptOutcome.COMPLETED)
    currency = settings.PRODUCTION_CURRENCY
    try:
        total = costs.job_cost([_attempt_cost(attempt) for attempt in priced], currency=currency)
    except costs.CostError as exc:
        raise InvalidInput(exc.message) from None
    inputs = {
        "currency": currency,
        "attempts": [{"number": attempt.number, "outcome": attempt.outcome,
                      **{name: costs.text(getattr(attempt, f"cost_{name}"))
                         for name in ("material", "energy", "machine", "labour", "total")},
                      "inputs": attempt.cost_inputs} for attempt in ended],
        "good_units": units,
        "unit_cost": costs.text(costs.per_unit(total.total, units)),
    }
    if priced:
        fields = costs.Cost(currency=currency, material=total.material, energy=total.energy,
                            machine=total.machine, labour=total.labour, inputs=inputs).model_fields()
    else:  # no attempt could be costed: no cost, and the inputs say why
        fields = {"cost_currency": "", **dict.fromkeys(COST_AMOUNT_FIELDS),
                  "cost_inputs": {**inputs, "unit_cost": None}}
    PrintJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    if job.status == PrintJobStatus.COMPLETED and units:
        _product_unit_cost_update(job.version.variant)
    return job


def _product_unit_cost_update(variant) -> None:
    product = production_selectors.printed_product(variant=variant)
    unit_cost = production_selectors.variant_unit_cost(variant=variant)
    if product is None or unit_cost.amount is None:
        return
    if product.currency != unit_cost.currency:
        logger.warning("Product %s is priced in %s, costs are kept in %s: its unit cost is left as it is.",
                       product.sku, product.currency, unit_cost.currency)
        return
    inventory_services.product_set_unit_cost(product=product, unit_cost=unit_cost.amount)


def _cost_recorded(attempt: PrintAttempt, printer_job=None) -> None:
    """Cost an attempt that was just booked. A cost that cannot be computed is recorded on the attempt (and
    logged) and never undoes the booking it follows."""
    try:
        with transaction.atomic():
            print_attempt_cost_compute(attempt=attempt, printer_job=printer_job)
        return
    except ApplicationError as exc:
        message = exc.message
        logger.warning("No cost for attempt %s of print job %s: %s", attempt.number, attempt.job_id, message)
    except Exception:  # noqa: BLE001 - the booking stands; the details go to the log
        logger.exception("Computing the cost of attempt %s of print job %s failed.", attempt.number,
                         attempt.job_id)
        message = _("The cost could not be computed; the details are in the server log.")
    PrintAttempt.objects.filter(pk=attempt.pk).update(cost_currency="", cost_inputs={"error": str(message)},
                                                      **dict.fromkeys(COST_AMOUNT_FIELDS))
    try:
        with transaction.atomic():
            print_job_cost_update(job=attempt.job)
    except Exception:  # noqa: BLE001 - as above
        logger.exception("Summing the cost of print job %s failed.", attempt.job_id)


def _station_figure(value, name: str, label: str) -> Decimal | int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = None if isinstance(value, bool) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite():
        raise InvalidInput(_("%(field)s must be a number, not %(value)r.") % {"field": label, "value": value},
                           extra={"fields": {name: [_("Enter a number.")]}})
    if number.adjusted() > 12:  # far above every limit: refused before it is turned into anything
        raise InvalidInput(_("%(field)s of %(value)s is far too large.") % {"field": label, "value": value},
                           extra={"fields": {name: [_("Far too large.")]}})
    if name == "lifetime_hours":
        if number != number.to_integral_value():
            raise InvalidInput(_("%(field)s must be a whole number of hours.") % {"field": label},
                               extra={"fields": {name: [_("Enter a whole number.")]}})
        return int(number)
    return number


def printer_station_set_costs(*, printer: Printer, power_w=None, purchase_price=None, lifetime_hours=None,
                              maintenance_per_hour=None, handling_minutes=None) -> PrinterStation:
    """Set what an hour on `printer` costs (and the minutes of handling per print); None or empty uses the
    PRODUCTION_* setting. Negative, absurd or malformed figures are refused (InvalidInput) and nothing changes."""
    given = {"power_w": power_w, "purchase_price": purchase_price, "lifetime_hours": lifetime_hours,
             "maintenance_per_hour": maintenance_per_hour, "handling_minutes": handling_minutes}
    values = {name: _station_figure(value, name, str(PrinterStation._meta.get_field(name).verbose_name))
              for name, value in given.items()}
    with transaction.atomic():
        station = _station_for_update(printer.pk)
        for name, value in values.items():
            setattr(station, name, value)
        validate(station)
        station.save(update_fields=[*values, "updated_at"])
    return station


@transaction.atomic
def spool_load(*, printer, tray: int, spool: Spool, by=None) -> SpoolLoad:
    """Staff put `spool` into slot `tray` of `printer`; a spool is in one place at a time."""
    if isinstance(tray, bool) or not isinstance(tray, int) or not 0 <= tray <= 255:
        raise InvalidInput(_("A printer slot is a number from 0 to 255 (Bambu: AMS unit × 4 + tray, 254 the "
                             "external spool)."))
    if spool.archived_at is not None:
        raise Conflict(_("Spool %(code)s is archived.") % {"code": spool.code})
    SpoolLoad.objects.filter(spool=spool).exclude(printer=printer, tray=tray).delete()
    load, _created = SpoolLoad.objects.update_or_create(printer=printer, tray=tray,
                                                        defaults={"spool": spool, "loaded_by": by})
    return load


def spool_unload(*, load: SpoolLoad) -> None:
    SpoolLoad.objects.filter(pk=load.pk).delete()


@transaction.atomic
def slot_allocation_correct(*, allocation: SlotAllocation, spool: Spool, by=None) -> SlotAllocation:
    """Say which spool really fed a slot; grams already booked move from the old spool to `spool`."""
    locked = SlotAllocation.objects.select_for_update(of=("self",)).select_related("spool", "attempt__printer_job").get(
        pk=allocation.pk)
    if locked.spool_id == spool.pk:
        return locked
    if spool.archived_at is not None:
        raise Conflict(_("Spool %(code)s is archived.") % {"code": spool.code})
    grams = locked.grams_booked or Decimal("0")
    if grams > 0 and locked.spool is not None:
        step = f"production:allocation:{locked.pk}:from:{locked.spool_id}:to:{spool.pk}:{timezone.now().timestamp()}"
        reason = _("Print job #%(job)s slot %(slot)s was fed by spool %(code)s") % {
            "job": locked.attempt.job_id, "slot": locked.slot, "code": spool.code}
        inventory_services.spool_credit(spool=locked.spool, grams_returned=grams, idempotency_key=step + ":back",
                                        reason=reason, source_type=SourceType.PRINT_JOB,
                                        source_id=str(locked.attempt.job_id), by=by)
        kind = MovementKind.USED if locked.attempt.outcome == AttemptOutcome.COMPLETED else MovementKind.FAILED_PRINT
        inventory_services.spool_use(spool=spool, grams_used=grams, kind=kind, idempotency_key=step + ":use",
                                     reason=reason, source_type=SourceType.PRINT_JOB,
                                     source_id=str(locked.attempt.job_id), by=by)
    elif locked.grams_booked is None and locked.attempt.booked_at is not None and locked.attempt.printer_job:
        # The print ended while no spool fitted this slot: book its grams now, once, on the chosen spool.
        attempt, printer_job = locked.attempt, locked.attempt.printer_job
        grams = _extruded(attempt, printer_job, attempt.outcome).get(locked.slot, Decimal("0"))
        if grams > 0:
            kind = MovementKind.USED if attempt.outcome == AttemptOutcome.COMPLETED else MovementKind.FAILED_PRINT
            inventory_services.spool_use(
                spool=spool, grams_used=grams, kind=kind, idempotency_key=_booking_key(printer_job,
                                                                                       f"slot:{locked.slot}"),
                reason=_("Print job #%(job)s, slot %(slot)s") % {"job": attempt.job_id, "slot": locked.slot},
                source_type=SourceType.PRINT_JOB, source_id=str(attempt.job_id), by=by)
        locked.grams_booked = grams
    locked.spool, locked.spool_source = spool, SpoolSource.CORRECTED
    locked.save(update_fields=["spool", "spool_source", "grams_booked"])
    if locked.attempt.booked_at is not None:
        _cost_recorded(locked.attempt)
    return locked


# --- dispatch: a queued job goes to a fitting printer --------------------------------------------
#
# A printer can take a job when it is active, online, idle (or its last job ended), its plate is
# cleared, its driver can receive and start the file, it passes feasibility's printer checks, and
# every filament slot of the plate finds a loaded tray of the same material, a close colour and
# enough grams left (a spool staff loaded there, else what the printer reports in its AMS, with the grams
# left on the spool in stock whose RFID tag the tray reads). Among those (Placement.rank):
#
# 1. exact colours first;
# 2. then the earliest predicted finish: now + the plate's estimated print time × how much longer or
#    shorter the printer really prints than estimated (selectors.printer_duration_factors; 1.0 without
#    history), compared to FINISH_RESOLUTION_S so that a few seconds do not outweigh what follows;
# 3. then the printer's success with the job's variant (selectors.printer_variant_success: its
#    completed ÷ ended attempts, smoothed towards the fleet's rate so one lucky print does not decide);
# 4. then the fewest grams left on the trays it would use (to finish spools).
#
# A printer still finishing a job is not free, so every candidate starts now. The claim is one
# conditional UPDATE of the job's status, so two dispatchers never send one job twice; the printer is
# claimed the same way, through its station's plate.
#
# Which job a free printer takes follows the farm plan (print_queue_replan) where there is one; see
# print_job_dispatch and _dispatch_candidates.

DISPATCH_IDLE_STATES = frozenset({"idle", "finished", "cancelled", "failed"})
ASSUMED_SPOOL_GRAMS = Decimal("1000")  # what a full AMS spool holds when only its percentage is known
FINISH_RESOLUTION_S = 300  # predicted finishes within the same five minutes count as the same


@dataclass
class Tray:
    tray: int
    material: str
    colour: str | None
    grams: Decimal | None  # None: unknown


@dataclass
class Placement:
    printer: Printer
    trays: dict[int, int]  # file slot -> printer tray
    exact: bool
    grams_left: Decimal
    print_seconds: float | None = None  # predicted on this printer; None when the file states no time
    finish_at: datetime | None = None  # now + print_seconds
    success: float = 0.5  # selectors.printer_variant_success

    @property
    def rank(self) -> tuple:
        finish = int(self.print_seconds // FINISH_RESOLUTION_S) if self.print_seconds is not None else 0
        return (not self.exact, finish, -self.success, self.grams_left, self.printer.pk)


class _DurationFactors:
    """The printers' duration factors (1.0 without history), each read once per dispatch when a job fits it."""

    def __init__(self):
        self.factors: dict[int, float] = {}

    def get(self, printer: Printer) -> float:
        if printer.pk not in self.factors:
            self.factors[printer.pk] = printer_duration_factors(printer_ids=[printer.pk]).get(printer.pk, 1.0)
        return self.factors[printer.pk]


def _loaded_trays(printer: Printer) -> list[Tray]:
    trays: dict[int, Tray] = {}
    live = getattr(printer, "live", None)
    entries = [entry for entry in (live.filament_slots if live is not None else None) or []
               if isinstance(entry, dict) and isinstance(entry.get("slot"), int)]
    tags = {entry["slot"]: str(entry.get("tag") or "").strip().upper() for entry in entries}
    tagged = inventory_selectors.spools_by_rfid_tag(tags=tags.values())
    for entry in entries:
        percent = entry.get("remaining_percent")
        grams = (ASSUMED_SPOOL_GRAMS * Decimal(str(percent)) / 100) if isinstance(percent, int | float) else None
        if tags[entry["slot"]] in tagged:  # a spool in stock the tray's RFID names: the grams it really has
            grams = tagged[tags[entry["slot"]]].remaining_grams
        trays[entry["slot"]] = Tray(entry["slot"], str(entry.get("type") or ""), normalise_hex(entry.get("colour")),
                                    grams)
    for load in SpoolLoad.objects.filter(printer=printer).select_related("spool__filament"):
        filament = load.spool.filament
        trays[load.tray] = Tray(load.tray, filament.material, normalise_hex(filament.colour_hex),
                                load.spool.remaining_grams)
    return list(trays.values())


def _placement(printer: Printer, job: PrintJob) -> Placement | None:
    """Where each slot of the job's plate would be fed from on `printer`; None when a slot finds no tray."""
    trays = _loaded_trays(printer)
    chosen, exact, left = {}, True, Decimal("0")
    for slot, material, colour, grams in _plate_slots(job):
        fitting = []
        for tray in trays:
            if material and material_key(tray.material) != material_key(material):
                continue
            # A tray that reports no colour (an unnamed external spool) is taken on its material alone.
            if colour is not None and tray.colour is not None \
                    and delta_e(colour, tray.colour) > settings.INVENTORY_COLOUR_TOLERANCE:
                continue
            if tray.grams is not None and tray.grams < grams:
                continue
            fitting.append((colour is not None and tray.colour == colour, tray))
        if not fitting:
            return None
        is_exact, tray = min(fitting, key=lambda item: (not item[0], item[1].grams if item[1].grams is not None
                                                        else ASSUMED_SPOOL_GRAMS, item[1].tray))
        chosen[slot] = tray.tray
        exact = exact and is_exact
        left += tray.grams if tray.grams is not None else ASSUMED_SPOOL_GRAMS
    return Placement(printer=printer, trays=chosen, exact=exact, grams_left=left)


def _free_printers(printer: Printer | None = None, *, auto_only: bool = False) -> list[Printer]:
    printers = Printer.objects.filter(is_active=True, live__online=True, live__state__in=DISPATCH_IDLE_STATES) \
        .select_related("live")
    if printer is not None:
        printers = printers.filter(pk=printer.pk)
    if auto_only:
        printers = printers.filter(station__auto_dispatch=True)
    busy = PrintAttempt.objects.filter(outcome=AttemptOutcome.RUNNING, printer__isnull=False).values("printer")
    cleared = [p for p in printers.exclude(pk__in=busy)
               if PrinterStation.objects.filter(printer=p, plate_clear=False).exists() is False]
    return cleared


def _placements(job: PrintJob, printers: list[Printer], factors: _DurationFactors | None = None) -> list[Placement]:
    """The printers that can take the job now (every hard filter), best first (Placement.rank)."""
    needs = feasibility.job_needs(job)
    if not needs.readable:
        return []
    name = job.version.sliced_file.original_name
    found = []
    for printer in printers:
        if not printer_selectors.printer_takes_file(printer=printer, name=name):
            continue
        if feasibility.PrinterBook.refusal(printer, needs) is not None:
            continue
        placement = _placement(printer, job)
        if placement is not None:
            found.append(placement)
    if not found:
        return []
    factors = factors if factors is not None else _DurationFactors()
    estimate = plate_estimated_seconds(job.version.sliced_file, job.plate)
    success = printer_variant_success(printer_ids=[p.printer.pk for p in found], variant_id=job.version.variant_id)
    now = timezone.now()
    for placement in found:
        placement.success = success[placement.printer.pk]
        if estimate is not None:
            placement.print_seconds = estimate * factors.get(placement.printer)
            placement.finish_at = now + timedelta(seconds=placement.print_seconds)
    return sorted(found, key=lambda p: p.rank)


def _claim(job: PrintJob, placement: Placement) -> PrintAttempt | None:
    """Take the job and the printer for this dispatch, or None when another dispatcher took either first."""
    printer = placement.printer
    with transaction.atomic():
        PrinterStation.objects.get_or_create(printer=printer)
        taken = PrinterStation.objects.filter(printer=printer, plate_clear=True).update(plate_clear=False)
        if not taken:
            return None
        claimed = PrintJob.objects.filter(pk=job.pk, status=PrintJobStatus.QUEUED).update(
            status=PrintJobStatus.ASSIGNED, printer=printer, updated_at=timezone.now())
        if not claimed:
            transaction.set_rollback(True)
            return None
        number = (PrintAttempt.objects.filter(job=job).aggregate(last=Max("number"))["last"] or 0) + 1
        attempt = PrintAttempt.objects.create(job=job, number=number, printer=printer,
                                              file_name=job.version.sliced_file.original_name[:255])
        attempt.job = PrintJob.objects.select_related("version__sliced_file", "version__variant").get(pk=job.pk)
        _allocate(attempt, placement.trays)
    return attempt


def _send(attempt: PrintAttempt, placement: Placement) -> PrintJob:
    job, printer = attempt.job, placement.printer
    sliced_file = job.version.sliced_file
    try:
        with sliced_file.file.open("rb") as source:
            entry = printer_services.printer_file_upload(printer=printer, name=sliced_file.original_name,
                                                         source=source, size=sliced_file.size_bytes)
        mapping = None
        if printer_selectors.printer_maps_filament(printer=printer):
            count = max([slot for slot, *_rest in _plate_slots(job)] + [len(_plate_grams(job))] + [0])
            mapping = [placement.trays.get(slot, -1) for slot in range(1, count + 1)]
        # One transaction: the start reaches the printer (the listener's pending command, the PrusaLink task
        # queued on commit) only once the job is recorded as sent, so the printer's first report of the job
        # finds its attempt waiting, however fast it comes.
        with transaction.atomic():
            printer_services.printer_start_file(printer=printer, path=entry.path, plate=job.plate,
                                                filament_mapping=mapping,
                                                idempotency_key=f"production:attempt:{attempt.pk}")
            job = print_job_transition(job=job, status=PrintJobStatus.SENT)
    except Exception as exc:
        message = exc.message if isinstance(exc, ApplicationError) else _("the transfer failed unexpectedly")
        if not isinstance(exc, ApplicationError):
            logger.exception("Sending print job %s to printer %s failed.", job.pk, printer.pk)
        with transaction.atomic():
            PrintAttempt.objects.filter(pk=attempt.pk).update(
                outcome=AttemptOutcome.FAILED, finished_at=timezone.now(),
                reason=(_("Not sent: %(error)s") % {"error": message})[:300])
            PrinterStation.objects.filter(printer=printer).update(plate_clear=True)
            print_job_transition(job=job, status=PrintJobStatus.QUEUED, reason=str(message))
        raise
    logger.info("Print job %s sent to printer %s as attempt %s.", job.pk, printer.pk, attempt.number)
    return job


def _dispatch_candidates(printers: list[Printer], factors: _DurationFactors):
    """The (job, placement) pairs the queue's dispatch tries, in order (see print_job_dispatch)."""
    queue = list(print_job_queue().filter(feasible=True).select_related("version__sliced_file", "version__variant"))
    free = {printer.pk: printer for printer in printers}
    # 1. The plan's jobs for the free printers, earliest planned start first (queue order among equals),
    #    each only on its planned printer.
    planned = sorted((queued for queued in queue
                      if queued.planned_printer_id in free and queued.planned_start is not None),
                     key=lambda queued: queued.planned_start)
    for queued in planned:
        for placement in _placements(queued, [free[queued.planned_printer_id]], factors):
            yield queued, placement
    # 2. The queue in its order on the best printer first, without the jobs the plan holds for another one.
    now = timezone.now()
    for queued in queue:
        for placement in _placements(queued, printers, factors):
            if not print_job_held_for_plan(job=queued, printer=placement.printer, now=now):
                yield queued, placement


def print_job_dispatch(*, job: PrintJob | None = None, printer: Printer | None = None,
                       auto_only: bool = False) -> PrintJob | None:
    """Send one queued job to a printer that can take it; returns the job sent, None when nothing fits.

    `job`: send this job (staff's "send now"); else a job of the queue that fits a free printer, chosen by
    the farm plan (the planned_printer and planned_start that print_queue_replan stores):

    1. a free printer takes first the jobs the plan puts on it, the earliest planned start first, as long
       as it can take the job now (filament loaded, file fits); a job it cannot take waits for step 2;
    2. otherwise the queue in its order (priority, position, age), each job on the best free printer
       (Placement.rank), except that a printer does not take a job the plan puts on another printer
       while that job's planned start is at most PRODUCTION_PLAN_HOLD_SECONDS away from now, before or
       after: its printer is expected to free up for it soon. A job planned to start later, or whose
       planned start passed longer ago than that, goes to any free printer that can take it;
    3. a queue without a plan (never planned, or no job the planner could place) is dispatched by step 2
       alone, in queue order, as before the plan existed.

    `printer`: only this printer (staff's "send to printer…", or a printer that just became free).
    `auto_only`: only printers with automatic dispatch on (the schedule). A chosen `job` is sent wherever it
    fits best, whatever the plan says (staff's choice). A chosen job that no printer can take now is refused
    with a Conflict that says why; a printer that refuses the file puts the job back.
    """
    printers = _free_printers(printer, auto_only=auto_only)
    factors = _DurationFactors()
    if job is not None:
        job = PrintJob.objects.select_related("version__sliced_file", "version__variant").get(pk=job.pk)
        if job.status not in WAITING_STATUSES:
            raise Conflict(_("Only a queued job can be sent; this one is %(status)s.")
                           % {"status": job.get_status_display()})
        if not printers:
            raise Conflict(_("No printer is free: it must be online, idle and have its plate cleared."))
        placements = _placements(job, printers, factors)
        if not placements:
            raise Conflict(_("No free printer can take job #%(job)s: none has the file's filaments loaded with "
                             "enough left, or none fits the file.") % {"job": job.pk})
        for placement in placements:
            attempt = _claim(job, placement)
            if attempt is not None:
                return _sent(attempt, placement)
        raise Conflict(_("Job #%(job)s was taken by another dispatcher or its printer is no longer free.")
                       % {"job": job.pk})
    if not printers:
        return None
    for queued, placement in _dispatch_candidates(printers, factors):
        attempt = _claim(queued, placement)
        if attempt is not None:
            return _sent(attempt, placement)
    return None


def _sent(attempt: PrintAttempt, placement: Placement) -> PrintJob:
    sent = _send(attempt, placement)
    print_jobs_recheck()
    return sent


def _plates_cleared_by_idle_printers() -> int:
    """Demo only (settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED): a printer with automatic dispatch that is
    online and idle again after its last job, with nothing running, counts as having its plate cleared.

    The demo's simulated printers clear their own plates a while after a job ends and then report idle;
    in a lab, an operator confirms it on the printer's station instead (printer_plate_cleared).
    """
    if not settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED:
        return 0
    busy = PrintAttempt.objects.filter(outcome=AttemptOutcome.RUNNING, printer__isnull=False).values("printer")
    return PrinterStation.objects.filter(
        auto_dispatch=True, plate_clear=False, printer__live__online=True, printer__live__state="idle",
    ).exclude(printer__in=busy).update(plate_clear=True, updated_at=timezone.now())


def print_jobs_dispatch_auto() -> int:
    """Fill every free printer with automatic dispatch on from the queue; returns how many jobs were sent."""
    _plates_cleared_by_idle_printers()
    sent = 0
    for _round in range(Printer.objects.count()):
        try:
            job = print_job_dispatch(auto_only=True)
        except ApplicationError as exc:
            logger.warning("Automatic dispatch stopped: %s", exc.message)
            break
        if job is None:
            break
        sent += 1
    return sent


def printer_plate_cleared(*, printer: Printer) -> PrinterStation:
    """An operator confirms the printer's plate is empty: it may take the next job."""
    with transaction.atomic():
        station = _station_for_update(printer.pk)
        station.plate_clear = True
        station.save(update_fields=["plate_clear", "updated_at"])
    return station


def printer_station_set_auto(*, printer: Printer, auto_dispatch: bool) -> PrinterStation:
    with transaction.atomic():
        station = _station_for_update(printer.pk)
        station.auto_dispatch = bool(auto_dispatch)
        station.save(update_fields=["auto_dispatch", "updated_at"])
    return station


def print_job_free_printers(*, job: PrintJob) -> list[Printer]:
    """The free printers that could take the waiting job now, best first: what staff choose from in
    "send to printer…" (print_job_dispatch(job=..., printer=...) checks again when it is sent).
    A job that does not wait in the queue has none."""
    job = PrintJob.objects.select_related("version__sliced_file", "version__variant").get(pk=job.pk)
    if job.status not in WAITING_STATUSES:
        return []
    return [placement.printer for placement in _placements(job, _free_printers())]

"""Every write of production.

The print queue: `print_job_create` queues a job (once per idempotency key and organization),
`print_job_transition` is the one move of its status (production.choices.ALLOWED_TRANSITIONS),
`print_job_cancel` / `print_job_requeue` / `print_job_set_priority` / `print_job_move` are what staff
and partners ask for, and `print_jobs_recheck` stores the feasibility of every waiting job
(production.feasibility), in queue order, after anything that changes the queue.

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
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from catalog.models import ModelVariant, VariantVersion
from fablab.exceptions import ApplicationError, Conflict, InvalidInput
from fablab.states import check_transition
from fablab.validation import validate
from printers import files as printer_files
from printers.files import PrinterFile
from printers.models import Printer
from production import feasibility
from production.choices import (
    ALLOWED_TRANSITIONS,
    IMPORT_PENDING,
    WAITING_STATUSES,
    ImportStatus,
    PrintJobStatus,
    Priority,
    Purpose,
)
from production.models import PrinterFileImport, PrintJob
from production.selectors import print_job_queue, printer_file_importable

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
    now = timezone.now()
    locked.status = status
    fields = ["status", "updated_at"]
    if status == PrintJobStatus.PRINTING and locked.started_at is None:
        locked.started_at, fields = now, [*fields, "started_at"]
    if status in (PrintJobStatus.COMPLETED, PrintJobStatus.FAILED, PrintJobStatus.CANCELLED):
        locked.finished_at, fields = now, [*fields, "finished_at"]
    if status == PrintJobStatus.QUEUED:
        locked.position = _next_position()
        locked.printer, locked.started_at, locked.finished_at = None, None, None
        fields += ["position", "printer", "started_at", "finished_at"]
    locked.save(update_fields=fields)
    logger.info("Print job %s: %s → %s %s", locked.pk, job.status, status, reason)
    return locked


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
    return sum(_store(job, results[job.pk], now) for job in jobs)


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

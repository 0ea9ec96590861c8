"""Every non-trivial read of production."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from fablab.choices import OrganizationKind
from fablab.exceptions import NotFound, PermissionDenied
from inventory import selectors as inventory_selectors
from inventory.choices import SourceType
from printers import files as printer_files
from printers import selectors as printer_selectors
from printers.choices import ACTIVE_STATES
from printers.files import PrinterFile
from production import feasibility
from production.choices import ON_PRINTER_STATUSES, WAITING_STATUSES, AttemptOutcome, PrintJobStatus
from production.feasibility import reason_text
from production.models import PrintAttempt, PrinterFileImport, PrinterStation, PrintJob, SlotAllocation


@dataclass(frozen=True)
class PrinterFileChoice:
    """A file on a printer as staff and the lab's integrations see it: may it go into the catalog?"""

    file: PrinterFile
    importable: bool  # the printer hands it out and the catalog takes files of its kind


def printer_file_importable(printer_file: PrinterFile) -> bool:
    """Whether the catalog takes this file (by the catalog's own rule for uploads) and the printer hands it out."""
    return printer_file.downloadable and catalog_services.sliced_file_suffix(name=printer_file.name) is not None


def printer_file_list(*, printer) -> list[PrinterFileChoice]:
    """The files on the printer's storage, newest first, each saying whether it can go into the catalog.

    Asks the printer (printers.files.printer_files_list): its errors (unreachable, refused
    credentials, another transfer running) propagate.
    """
    return [PrinterFileChoice(file=f, importable=printer_file_importable(f))
            for f in printer_files.printer_files_list(printer=printer)]


def printer_file_import_list(*, printer) -> QuerySet[PrinterFileImport]:
    """The downloads from this printer into the catalog, newest first."""
    return PrinterFileImport.objects.filter(printer=printer).select_related(
        "requested_by", "version__variant").order_by("-created_at", "-id")


def printer_file_import_get(*, printer, import_id: int) -> PrinterFileImport:
    """One download from this printer (a download of another printer is not found)."""
    item = PrinterFileImport.objects.filter(printer=printer, pk=import_id).select_related(
        "version__variant", "version__sliced_file").first()
    if item is None:
        raise NotFound(_("Download %(id)s of this printer does not exist.") % {"id": import_id})
    return item


# --- the print queue -----------------------------------------------------------------------------


def _jobs() -> QuerySet[PrintJob]:
    return PrintJob.objects.select_related(
        "version__variant__model", "version__sliced_file", "organization", "queued_by", "printer",
    ).annotate(attempt_count=Count("attempts"))


def print_job_list(*, organization=None, status: str = "", version_id: int | None = None) -> QuerySet[PrintJob]:
    """Print jobs in queue order (priority, position, age), with `attempt_count`.

    `organization`: only what its API keys may see (PrintJobQuerySet.for_organization); None: all (staff).
    """
    qs = _jobs()
    if organization is not None:
        qs = qs.for_organization(organization)
    if status:
        qs = qs.filter(status=status)
    if version_id is not None:
        qs = qs.filter(version_id=version_id)
    return qs.in_queue_order()


def print_job_get(*, job_id: int, organization=None) -> PrintJob:
    """One print job; another organization's job is not found, exactly like one that does not exist."""
    job = print_job_list(organization=organization).filter(pk=job_id).first()
    if job is None:
        raise NotFound(_("Print job %(id)s does not exist.") % {"id": job_id})
    return job


def print_job_queue() -> QuerySet[PrintJob]:
    """The jobs waiting for a printer, in the order they get one."""
    return PrintJob.objects.filter(status__in=WAITING_STATUSES).select_related(
        "version__sliced_file", "version__variant").in_queue_order()


def print_job_feasibility_texts(*, job: PrintJob) -> list[str]:
    """The stored reasons why the job cannot be printed now, as sentences in the active language."""
    return [reason_text(item) for item in job.feasibility_reasons or [] if isinstance(item, dict)]


def _start_of_day(moment: datetime) -> datetime:
    """Midnight of `moment`'s day in the current time zone (the lab's, or the staff member's)."""
    return timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def print_job_queued_seconds() -> float:
    """The printing time of the waiting jobs: each plate's estimate (from its file) × copies; a file that states
    no estimate counts nothing."""
    total = 0.0
    for job in PrintJob.objects.filter(status__in=WAITING_STATUSES).select_related("version__sliced_file"):
        fields = feasibility.plate_fields(job.version.sliced_file, job.plate)
        seconds = fields.get("estimated_time_s")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < float("inf"):
            total += seconds * job.copies
    return total


def print_attempt_failure_rate(*, since: datetime) -> tuple[int, int]:
    """(failed, ended) print attempts that ended since `since`; a cancelled attempt is neither."""
    counts = PrintAttempt.objects.filter(finished_at__gte=since).aggregate(
        failed=Count("pk", filter=Q(outcome=AttemptOutcome.FAILED)),
        ended=Count("pk", filter=Q(outcome__in=[AttemptOutcome.FAILED, AttemptOutcome.COMPLETED])),
    )
    return counts["failed"], counts["ended"]


def production_kpis(*, now: datetime | None = None) -> list[dict]:
    """The dashboard's production figures, plain numbers (units in the labels). "Today" and "this week" (from
    Monday) are in the current time zone; the failure rate is failed of ended (completed or failed) attempts,
    0 while none ended."""
    now = now or timezone.now()
    today = _start_of_day(now)
    week = today - timedelta(days=today.weekday())
    counts = PrintJob.objects.aggregate(
        queued=Count("pk", filter=Q(status__in=WAITING_STATUSES)),
        blocked=Count("pk", filter=Q(status__in=WAITING_STATUSES, feasible=False)),
        printing=Count("pk", filter=Q(status=PrintJobStatus.PRINTING)),
        completed_today=Count("pk", filter=Q(status=PrintJobStatus.COMPLETED, finished_at__gte=today)),
    )
    failed, ended = print_attempt_failure_rate(since=week)
    hours = print_job_queued_seconds() / 3600
    booked = inventory_selectors.filament_booked_grams(since=today, source_type=SourceType.PRINT_JOB)
    return [
        {"label": _("Queued jobs"), "value": counts["queued"]},
        {"label": _("Queued printing hours"), "value": f"{hours:.1f}"},
        {"label": _("Queued, cannot print now"), "value": counts["blocked"]},
        {"label": _("Printing"), "value": counts["printing"]},
        {"label": _("Completed today"), "value": counts["completed_today"]},
        {"label": _("Failure rate this week (%)"), "value": round(100 * failed / ended) if ended else 0},
        {"label": _("Filament booked today (g)"), "value": f"{booked:.0f}"},
    ]


# --- what production knows about each printer ----------------------------------------------------

# How many of the first feasible waiting jobs are looked at for a printer's next job.
NEXT_JOB_LOOKAHEAD = 50


@dataclass(frozen=True)
class PrinterProduction:
    """Production's view of one printer: the job on it, the one it had last, the one it gets next, its plate."""

    printer_id: int
    current: PrintJob | None  # assigned, sent or printing on it
    last: PrintJob | None  # the job of its latest attempt, when none is on it
    next: PrintJob | None  # printer_next_jobs
    plate_clear: bool
    auto_dispatch: bool
    printer_busy: bool  # the printer reports a job running or paused (its own, perhaps started by hand)

    @property
    def plate_waits(self) -> bool:
        """The print ended and nobody has confirmed the plate is empty yet: the printer takes no job."""
        return not self.plate_clear and self.current is None and not self.printer_busy


def _job_rows() -> QuerySet[PrintJob]:
    return PrintJob.objects.select_related("version__variant__model", "version__sliced_file")


def printer_next_jobs(*, printers, lookahead: int = NEXT_JOB_LOOKAHEAD) -> dict[int, PrintJob | None]:
    """Each printer's next job: the first waiting job, in queue order, that can print now (feasible) and that
    the printer takes (its driver receives and starts the file; model, nozzle and height fit). Whether its
    loaded filaments fit is decided by dispatch when the printer is free. An inactive printer gets none."""
    jobs = list(print_job_queue().filter(feasible=True).select_related("version__variant__model")[:lookahead])
    needs: dict[int, feasibility.JobNeeds] = {}
    result: dict[int, PrintJob | None] = {}
    for printer in printers:
        result[printer.pk] = None
        if not printer.is_active:
            continue
        for job in jobs:
            if job.pk not in needs:
                needs[job.pk] = feasibility.job_needs(job)
            if not needs[job.pk].readable:
                continue
            if printer_selectors.printer_takes_file(printer=printer, name=job.version.sliced_file.original_name) \
                    and feasibility.PrinterBook.refusal(printer, needs[job.pk]) is None:
                result[printer.pk] = job
                break
    return result


def printer_production(*, printers) -> dict[int, PrinterProduction]:
    """Production's view of each printer (`printers` with their live state): a few queries for all of them."""
    printers = list(printers)
    ids = [printer.pk for printer in printers]
    current: dict[int, PrintJob] = {}
    for job in _job_rows().filter(printer_id__in=ids, status__in=ON_PRINTER_STATUSES).order_by("updated_at", "id"):
        current[job.printer_id] = job  # the newest wins, should there be two
    stations = {station.printer_id: station for station in PrinterStation.objects.filter(printer_id__in=ids)}
    latest = {}
    idle = [pk for pk in ids if pk not in current]
    for attempt in PrintAttempt.objects.filter(printer_id__in=idle).order_by("printer_id", "-id").values(
            "printer_id", "job_id"):
        latest.setdefault(attempt["printer_id"], attempt["job_id"])
    last = _job_rows().in_bulk(set(latest.values()))
    upcoming = printer_next_jobs(printers=printers)
    result = {}
    for printer in printers:
        station = stations.get(printer.pk)
        live = getattr(printer, "live", None)
        result[printer.pk] = PrinterProduction(
            printer_id=printer.pk, current=current.get(printer.pk),
            last=last.get(latest.get(printer.pk)) if printer.pk not in current else None,
            next=upcoming.get(printer.pk), plate_clear=station.plate_clear if station else True,
            auto_dispatch=station.auto_dispatch if station else False,
            printer_busy=live is not None and live.state in ACTIVE_STATES,
        )
    return result


# --- a job's page --------------------------------------------------------------------------------


def print_job_allocations(*, job: PrintJob) -> QuerySet[SlotAllocation]:
    """The job's slot allocations over all its attempts (attempt, then slot)."""
    return SlotAllocation.objects.filter(attempt__job=job).select_related("attempt", "spool__filament").order_by(
        "attempt__number", "slot")


def print_job_ledger(*, job: PrintJob) -> tuple[QuerySet, QuerySet]:
    """The inventory ledger rows the job wrote: (spool movements, product movements), oldest first."""
    source = {"source_type": SourceType.PRINT_JOB, "source_id": str(job.pk)}
    return (inventory_selectors.movement_list_for_source(**source),
            inventory_selectors.product_movement_list_for_source(**source))


def print_job_booked_grams(*, job: PrintJob) -> list[float]:
    """Grams booked per filament slot (slot 1 first) over all the job's attempts; empty before any booking."""
    rows = SlotAllocation.objects.filter(attempt__job=job, grams_booked__isnull=False).values_list("slot",
                                                                                                  "grams_booked")
    if not rows:
        return []
    totals: dict[int, float] = {}
    for slot, grams in rows:
        totals[slot] = totals.get(slot, 0.0) + float(grams)
    return [round(totals.get(slot, 0.0), 3) for slot in range(1, max(totals) + 1)]


def allocation_movements(*, allocation) -> list:
    """The spool ledger rows a slot allocation's booking (and its corrections) wrote."""
    from inventory.models import Movement

    attempt = allocation.attempt
    keys = [f"production:printer-job:{attempt.printer_job_id}:slot:{allocation.slot}"] if attempt.printer_job_id \
        else []
    return list(Movement.objects.filter(Q(idempotency_key__in=keys)
                                        | Q(idempotency_key__startswith=f"production:allocation:{allocation.pk}:"))
                .select_related("spool").order_by("created_at", "id"))


def print_queue_owner(*, organization):
    """The organization whose print queue a key works on: a partner or the lab, never a customer."""
    if organization.kind == OrganizationKind.CUSTOMER:
        raise PermissionDenied(_("The print queue is open to partners and the lab's own systems, not to "
                                 "customers' keys."))
    return organization


def print_queue_catalog_scope(*, organization):
    """What an organization may queue: the lab every version (None: no partner filter), a partner what the
    catalog shows it."""
    return None if organization.kind == OrganizationKind.LAB else organization

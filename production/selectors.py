"""Every non-trivial read of production."""

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.models import ModelVariant, VariantVersion
from fablab.choices import OrganizationKind
from fablab.exceptions import InvalidInput, NotFound, PermissionDenied
from inventory import selectors as inventory_selectors
from inventory.choices import ProductKind, SourceType
from inventory.models import Product
from printers import files as printer_files
from printers import selectors as printer_selectors
from printers.choices import ACTIVE_STATES
from printers.files import PrinterFile
from production import costs, feasibility
from production.choices import ON_PRINTER_STATUSES, WAITING_STATUSES, AttemptOutcome, PrintJobStatus
from production.feasibility import plate_fields, reason_text
from production.models import (
    PrintAttempt,
    PrinterFileImport,
    PrinterStation,
    PrintJob,
    QueueReplan,
    SlotAllocation,
)


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
        "version__variant__model", "version__sliced_file", "organization", "queued_by", "printer", "planned_printer",
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
    """The dashboard's production figures, plain numbers (units and currency in the labels). "Today" and "this
    week" (from Monday) are in the current time zone; the failure rate is failed of ended (completed or failed)
    attempts, 0 while none ended. Then the farm's figures (production_farm_kpis) and, where production has
    market events, the next event's readiness."""
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
        {"label": _("Queued printing hours"), "value": round(hours, 1)},
        {"label": _("Queued, cannot print now"), "value": counts["blocked"]},
        {"label": _("Printing"), "value": counts["printing"]},
        {"label": _("Completed today"), "value": counts["completed_today"]},
        {"label": _("Failure rate this week (%)"), "value": round(100 * failed / ended) if ended else 0},
        {"label": _("Filament booked today (g)"), "value": int(booked.quantize(Decimal("1")))},
        *production_farm_kpis(now=now),
        *_next_event_kpis(),
    ]


UTILISATION_DAYS = 7
SUCCESS_DAYS = 7
COST_PER_GRAM_DAYS = 30


def print_jobs_late() -> int:
    """Waiting jobs whose planned finish (the farm's plan) is after their due time."""
    return PrintJob.objects.filter(status__in=WAITING_STATUSES, planned_finish__isnull=False,
                                   due_at__isnull=False, planned_finish__gt=F("due_at")).count()


def printer_utilisation(*, now: datetime, days: int = UTILISATION_DAYS) -> dict[int, float]:
    """Each printer's share of the last `days` days spent printing, in percent (0.1): the time its attempts ran
    (from the printer's start to their end, a running one until now), clipped to the window."""
    since = now - timedelta(days=days)
    attempts = PrintAttempt.objects.filter(printer__isnull=False, started_at__isnull=False, started_at__lt=now).filter(
        Q(finished_at__gt=since) | Q(finished_at__isnull=True, outcome=AttemptOutcome.RUNNING))
    seconds: dict[int, float] = {}
    for printer_id, started, finished in attempts.values_list("printer_id", "started_at", "finished_at"):
        span = (min(finished or now, now) - max(started, since)).total_seconds()
        if span > 0:
            seconds[printer_id] = seconds.get(printer_id, 0.0) + span
    window = days * 86400
    return {printer_id: round(min(100.0, 100 * total / window), 1) for printer_id, total in seconds.items()}


def print_attempt_success_rate(*, since: datetime) -> float:
    """Completed of ended (completed or failed) attempts that ended since `since`, in percent (0.1); 0 for none."""
    failed, ended = print_attempt_failure_rate(since=since)
    return round(100 * (ended - failed) / ended, 1) if ended else 0.0


def print_cost_per_gram(*, since: datetime) -> float:
    """What a gram of printed filament cost over the attempts that ended since `since`: their costs (in
    PRODUCTION_CURRENCY) over the grams booked on them; 0 when none was costed."""
    costed = PrintAttempt.objects.filter(finished_at__gte=since, cost_total__isnull=False,
                                         cost_currency=settings.PRODUCTION_CURRENCY)
    total = costed.aggregate(total=Sum("cost_total"))["total"]
    grams = SlotAllocation.objects.filter(attempt__in=costed, grams_booked__isnull=False).aggregate(
        grams=Sum("grams_booked"))["grams"]
    if not total or not grams:
        return 0.0
    return round(float(Decimal(str(total)) / Decimal(str(grams))), 4)


def production_farm_kpis(*, now: datetime | None = None) -> list[dict]:
    """The farm's figures: late jobs, utilisation per active printer over 7 days, success rate over 7 days and
    the cost per gram over 30 days."""
    now = now or timezone.now()
    utilisation = printer_utilisation(now=now)
    currency = settings.PRODUCTION_CURRENCY
    figures = [
        {"label": _("Queued jobs planned to finish late"), "value": print_jobs_late()},
        {"label": _("Success rate, last %(days)s days (%%)") % {"days": SUCCESS_DAYS},
         "value": print_attempt_success_rate(since=now - timedelta(days=SUCCESS_DAYS))},
        {"label": _("Cost per gram, last %(days)s days (%(currency)s)") % {"days": COST_PER_GRAM_DAYS,
                                                                          "currency": currency},
         "value": print_cost_per_gram(since=now - timedelta(days=COST_PER_GRAM_DAYS))},
    ]
    for printer in printer_selectors.printer_list().filter(is_active=True):
        figures.append({"label": _("Utilisation of %(printer)s, last %(days)s days (%%)")
                        % {"printer": printer.name, "days": UTILISATION_DAYS},
                        "value": utilisation.get(printer.pk, 0.0)})
    return figures


def _next_event_kpis() -> list[dict]:
    """The next market event's readiness (production.event_selectors): days left, the share of its target
    units in stock, what still has to be printed and the checklist's progress; none without an event."""
    from production.event_selectors import market_event_next_readiness

    found = market_event_next_readiness()
    if not found:
        return []
    name = found["name"]
    target = found["units_target"]
    figures = [
        {"label": _("Next market: %(name)s, days left") % {"name": name}, "value": found["days_left"]},
        {"label": _("%(name)s: target units in stock (%%)") % {"name": name},
         "value": round(100 * found["units_in_stock"] / target, 1) if target else 100.0},
        {"label": _("%(name)s: units still missing") % {"name": name}, "value": found["shortfall"]},
    ]
    if found["checklist_share"] is not None:
        figures.append({"label": _("%(name)s: checklist done (%%)") % {"name": name},
                        "value": round(100 * float(found["checklist_share"]), 1)})
    return figures


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


def print_job_held_for_plan(*, job: PrintJob, printer, now: datetime) -> bool:
    """Whether the plan keeps `job` for another printer than `printer`: it is planned on another printer, to
    start at most PRODUCTION_PLAN_HOLD_SECONDS from now (before or after)."""
    if job.planned_printer_id is None or job.planned_printer_id == printer.pk or job.planned_start is None:
        return False
    hold = timedelta(seconds=max(0, settings.PRODUCTION_PLAN_HOLD_SECONDS))
    return abs(job.planned_start - now) <= hold


def _in_plan_order(jobs: list[PrintJob], printer, now: datetime) -> list[PrintJob]:
    """The order dispatch tries jobs on `printer`: the plan's jobs for it by planned start, then the queue's
    order without the jobs the plan holds for another printer."""
    planned = sorted((job for job in jobs if job.planned_printer_id == printer.pk and job.planned_start is not None),
                     key=lambda job: job.planned_start)
    rest = [job for job in jobs
            if job not in planned and not print_job_held_for_plan(job=job, printer=printer, now=now)]
    return planned + rest


def printer_next_jobs(*, printers, lookahead: int = NEXT_JOB_LOOKAHEAD) -> dict[int, PrintJob | None]:
    """Each printer's next job: the first waiting job, in the order dispatch tries them (the plan's jobs for
    the printer first, then queue order without the jobs the plan holds for another printer), that can print
    now (feasible) and that the printer takes (its driver receives and starts the file; model, nozzle and
    height fit). Whether its loaded filaments fit is decided by dispatch when the printer is free. An
    inactive printer gets none."""
    jobs = list(print_job_queue().filter(feasible=True).select_related("version__variant__model")[:lookahead])
    now = timezone.now()
    needs: dict[int, feasibility.JobNeeds] = {}
    result: dict[int, PrintJob | None] = {}
    for printer in printers:
        result[printer.pk] = None
        if not printer.is_active:
            continue
        for job in _in_plan_order(jobs, printer, now):
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


# --- the plan as a timeline ------------------------------------------------------------------------

# The spacing of the timeline's ticks: the shortest that gives at most TIMELINE_MAX_TICKS of them.
TIMELINE_TICK_STEPS_S = (3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 2 * 86400, 7 * 86400)
TIMELINE_MAX_TICKS = 12


def _floor_local(moment: datetime, step_s: int) -> datetime:
    """`moment` rounded down to a multiple of `step_s` of the day in the active time zone (midnight for a day
    or more), so that ticks fall on round local hours."""
    local = timezone.localtime(moment)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if step_s >= 86400:
        return midnight
    seconds = (local - midnight).total_seconds()
    return midnight + timedelta(seconds=seconds // step_s * step_s)


def print_plan_timeline(*, now: datetime | None = None) -> dict:
    """The stored plan of the queue (print_queue_replan) as a timeline: one row per printer (the active ones,
    and any other that still has planned jobs), ordered by name, with its waiting jobs as bars in planned
    order.

    Positions are percentages of the window, which runs from the earlier of now and the first planned start
    to the later of now + 1 h and the last planned finish, widened to whole ticks (`ticks`: round hours or
    days in the active time zone). Each bar: `job`, `start`, `finish`, `due`, `late` (the planned finish is
    after the due date), `left` and `width` (in %), `due_left` (None without a due date or when it lies
    outside the window). Also: `now_left`, `jobs`, `late` (how many planned jobs finish late), `unplanned`
    (waiting jobs without a plan), `planned_at` and `solver` of the last stored plan (None: never planned).
    """
    now = now or timezone.now()
    jobs = list(PrintJob.objects.filter(
        status__in=WAITING_STATUSES, planned_printer__isnull=False, planned_start__isnull=False,
        planned_finish__isnull=False,
    ).select_related("version__variant__model", "planned_printer").order_by("planned_start", "id"))
    first = min([now, *(job.planned_start for job in jobs)])
    last = max([now + timedelta(hours=1), *(job.planned_finish for job in jobs)])

    def steps_needed(step_s: int) -> int:
        return math.ceil((last - _floor_local(first, step_s)).total_seconds() / step_s)

    step_s = next((step for step in TIMELINE_TICK_STEPS_S if steps_needed(step) <= TIMELINE_MAX_TICKS - 1), None)
    if step_s is None:  # longer than the longest step allows: whole days, as many as it takes
        step_s = math.ceil((last - first).total_seconds() / (TIMELINE_MAX_TICKS - 2) / 86400) * 86400
    start = _floor_local(first, step_s).astimezone(UTC)  # ticks then step in real time, across DST too
    ticks = [start]
    while ticks[-1] < last:
        ticks.append(ticks[-1] + timedelta(seconds=step_s))
    end = ticks[-1]
    window_s = (end - start).total_seconds()

    def left(moment: datetime) -> float:
        return round(min(100.0, max(0.0, (moment - start).total_seconds() / window_s * 100)), 3)

    printers = {printer.pk: printer for printer in printer_selectors.printer_list().filter(is_active=True)}
    for job in jobs:
        printers.setdefault(job.planned_printer_id, job.planned_printer)
    bars: dict[int, list[dict]] = {pk: [] for pk in printers}
    for job in jobs:
        late = job.due_at is not None and job.planned_finish > job.due_at
        bars[job.planned_printer_id].append({
            "job": job, "start": job.planned_start, "finish": job.planned_finish, "due": job.due_at, "late": late,
            "left": left(job.planned_start),
            "width": round(left(job.planned_finish) - left(job.planned_start), 3),
            "due_left": left(job.due_at) if job.due_at is not None and start <= job.due_at <= end else None,
        })
    rows = [{"printer": printer, "bars": bars[printer.pk]}
            for printer in sorted(printers.values(), key=lambda printer: (printer.name.lower(), printer.pk))]
    stored = QueueReplan.objects.filter(pk=1).first()
    return {
        "now": now, "start": start, "end": end, "now_left": left(now),
        "ticks": [{"at": tick, "left": left(tick)} for tick in ticks],
        "rows": rows, "jobs": len(jobs), "late": sum(bar["late"] for row in rows for bar in row["bars"]),
        "unplanned": PrintJob.objects.filter(status__in=WAITING_STATUSES).filter(
            Q(planned_printer__isnull=True) | Q(planned_start__isnull=True) | Q(planned_finish__isnull=True)).count(),
        "planned_at": stored.planned_at if stored is not None else None,
        "solver": stored.solver if stored is not None else "",
    }


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


# --- history: how the printers and the catalog's versions have printed ---------------------------
#
# An attempt counts once it reached a printer and ended: completed, failed or cancelled with a start
# (`started_at`, set when the printer reported the print). An attempt the printer never started (the
# upload or the start was refused: "Not sent") says nothing about the print and is left out, as is
# one still running.

ENDED_OUTCOMES = (AttemptOutcome.COMPLETED, AttemptOutcome.FAILED, AttemptOutcome.CANCELLED)
DURATION_HISTORY = 50  # the latest completed prints a printer's speed is judged by
# The printer-and-variant success score starts from this many made-up attempts at the fleet's rate.
SUCCESS_PRIOR_ATTEMPTS = 4


def _printed_attempts() -> QuerySet[PrintAttempt]:
    return PrintAttempt.objects.filter(outcome__in=ENDED_OUTCOMES, started_at__isnull=False)


def plate_estimated_seconds(sliced_file, plate: int) -> float | None:
    """The slicer's estimated print time of one plate, in seconds; None when the file does not state it."""
    value = plate_fields(sliced_file, plate).get("estimated_time_s")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _real_seconds(attempt: PrintAttempt) -> float | None:
    printer_job = attempt.printer_job
    if printer_job is not None and printer_job.duration_seconds:
        return float(printer_job.duration_seconds)
    if attempt.started_at and attempt.finished_at and attempt.finished_at > attempt.started_at:
        return (attempt.finished_at - attempt.started_at).total_seconds()
    return None


def printer_duration_factors(*, printer_ids: Iterable[int]) -> dict[int, float]:
    """How much longer (> 1) or shorter (< 1) each printer really prints than the slicer estimated.

    The median of real ÷ estimated seconds over the printer's latest DURATION_HISTORY completed prints
    whose file states an estimate. The median, not the mean, so that one print left paused overnight
    does not make the printer look slow. A printer without such prints is absent (take 1.0).
    """
    factors = {}
    for printer_id in set(printer_ids):
        attempts = (PrintAttempt.objects.filter(printer_id=printer_id, outcome=AttemptOutcome.COMPLETED,
                                                started_at__isnull=False)
                    .select_related("printer_job", "job__version__sliced_file")
                    .order_by("-finished_at", "-id")[:DURATION_HISTORY])
        ratios = []
        for attempt in attempts:
            real = _real_seconds(attempt)
            estimate = plate_estimated_seconds(attempt.job.version.sliced_file, attempt.job.plate)
            if real and estimate:
                ratios.append(real / estimate)
        if ratios:
            factors[printer_id] = statistics.median(ratios)
    return factors


def printer_variant_success(*, printer_ids: Iterable[int], variant_id: int) -> dict[int, float]:
    """Each printer's expected share of good prints of a catalog variant, for ranking printers.

    completed ÷ ended attempts of the variant's jobs on the printer, smoothed: the printer starts with
    SUCCESS_PRIOR_ATTEMPTS made-up attempts at the whole fleet's rate for the variant (itself
    (completed + 1) ÷ (ended + 2), one half with no history at all), i.e. the mean of a Beta posterior.
    One lucky print moves a printer only a fifth of the way to 100 %, and a printer that never printed the
    variant counts as good as the fleet, neither preferred nor avoided; a Wilson lower bound instead would
    rank it below a printer that failed half its prints of the variant.
    """
    rows = _printed_attempts().filter(job__version__variant_id=variant_id).values("printer_id").annotate(
        ended=Count("pk"), completed=Count("pk", filter=Q(outcome=AttemptOutcome.COMPLETED))).order_by()
    counts = {row["printer_id"]: (row["completed"], row["ended"]) for row in rows}
    fleet = ((sum(c for c, _e in counts.values()) + 1) / (sum(e for _c, e in counts.values()) + 2))
    weight = SUCCESS_PRIOR_ATTEMPTS
    scores = {}
    for printer_id in set(printer_ids):
        completed, ended = counts.get(printer_id, (0, 0))
        scores[printer_id] = (completed + weight * fleet) / (ended + weight)
    return scores


# --- success rate per catalog version ------------------------------------------------------------

WILSON_Z = 1.96  # 95 %


def wilson_interval(completed: int, attempts: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion `completed` / `attempts` (95 % for z = 1.96).

    Unlike the plain p ± z·√(p(1−p)/n) it stays within [0, 1] and is honest for few attempts and for
    rates near 0 or 1 (10 of 10 is [0.72, 1.0], not [1.0, 1.0]). None without attempts.
    """
    if attempts <= 0:
        return None
    if not 0 <= completed <= attempts:
        raise ValueError(f"{completed} completed of {attempts} attempts")
    p, n, z2 = completed / attempts, attempts, z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


@dataclass(frozen=True)
class SuccessRate:
    """How often the prints of a catalog version came out: completed over ended attempts."""

    version_id: int
    attempts: int
    completed: int

    @property
    def rate(self) -> float | None:
        return self.completed / self.attempts if self.attempts else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.completed, self.attempts)

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.attempts else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.attempts else None


def version_success_rates(*, version_ids: Iterable[int]) -> dict[int, SuccessRate]:
    """The success rate of each version (every organization's prints of it); one query."""
    ids = set(version_ids)
    rows = _printed_attempts().filter(job__version_id__in=ids).values("job__version_id").annotate(
        attempts=Count("pk"), completed=Count("pk", filter=Q(outcome=AttemptOutcome.COMPLETED))).order_by()
    counts = {row["job__version_id"]: (row["attempts"], row["completed"]) for row in rows}
    return {pk: SuccessRate(pk, *counts.get(pk, (0, 0))) for pk in ids}


def version_success_rate(*, version: VariantVersion) -> SuccessRate:
    return version_success_rates(version_ids=[version.pk])[version.pk]


def sliced_file_success_rates(*, sliced_file) -> list[tuple[VariantVersion, SuccessRate]]:
    """The success rate of every version that uses this file (usually one), by SKU and number."""
    versions = list(VariantVersion.objects.filter(sliced_file=sliced_file).select_related("variant")
                    .order_by("variant__sku", "number"))
    rates = version_success_rates(version_ids=[version.pk for version in versions])
    return [(version, rates[version.pk]) for version in versions]


def version_success_rate_get(*, version_id: int, organization) -> SuccessRate:
    """The success rate of a version as an organization's API keys may see it.

    The lab's keys see every version; a partner only the versions of its own designs. The rate counts
    every organization's prints of the version, so for a design the lab shares with partners it would tell
    one partner how much the others print: such a version, and any other organization's, is not found,
    exactly like one that does not exist. Customers' keys are refused (print_queue_owner).
    """
    organization = print_queue_owner(organization=organization)
    versions = VariantVersion.objects.all()
    if organization.kind != OrganizationKind.LAB:
        versions = versions.filter(variant__model__designer=organization)
    if not versions.filter(pk=version_id).exists():
        raise NotFound(_("No catalog version with id %(id)s.") % {"id": version_id})
    return version_success_rates(version_ids=[version_id])[version_id]
# --- costs ---------------------------------------------------------------------------------------

# The figures a printer's station may set, each with the setting used when it is empty.
STATION_COST_SETTINGS = {
    "power_w": "PRODUCTION_PRINTER_POWER_W",
    "purchase_price": "PRODUCTION_PRINTER_PRICE",
    "lifetime_hours": "PRODUCTION_PRINTER_LIFETIME_HOURS",
    "maintenance_per_hour": "PRODUCTION_PRINTER_MAINTENANCE_PER_HOUR",
    "handling_minutes": "PRODUCTION_HANDLING_MINUTES",
}


def printer_cost_rates(*, printer_id: int | None) -> costs.Rates:
    """What an hour on the printer costs besides material: its station's figures, the settings where it has none."""
    station = PrinterStation.objects.filter(printer_id=printer_id).first() if printer_id is not None else None
    values, own = {}, set()
    for name, setting in STATION_COST_SETTINGS.items():
        value = getattr(station, name, None) if station is not None else None
        if value is None:
            values[name] = Decimal(getattr(settings, setting))
        else:
            values[name], own = Decimal(value), own | {name}
    return costs.Rates(energy_price_per_kwh=settings.PRODUCTION_ENERGY_PRICE_PER_KWH,
                       labour_per_hour=settings.PRODUCTION_LABOUR_PER_HOUR, from_station=frozenset(own), **values)


def print_cost_texts(*, costed) -> list[str]:
    """Why the stored cost of a print job or attempt (`costed`) leaves something out, or why there is none, as
    sentences in the active language."""
    inputs = costed.cost_inputs or {}
    found = [reason_text(item) for item in inputs.get("warnings") or [] if isinstance(item, dict)]
    for attempt in inputs.get("attempts") or []:
        nested = attempt.get("inputs") if isinstance(attempt, dict) else None
        for item in (nested or {}).get("warnings") or []:
            if isinstance(item, dict):
                found.append(_("Attempt %(number)s: %(text)s") % {"number": attempt.get("number"),
                                                                   "text": reason_text(item)})
        if isinstance(nested, dict) and nested.get("error"):
            found.append(_("Attempt %(number)s has no cost: %(error)s") % {"number": attempt.get("number"),
                                                                            "error": nested["error"]})
    if inputs.get("error"):
        found.append(str(inputs["error"]))
    return found


@dataclass(frozen=True)
class UnitCost:
    amount: Decimal | None  # None: no completed print with a cost yet
    currency: str
    jobs: int  # the completed jobs the mean is over


def _stored_unit_cost(job: PrintJob) -> Decimal | None:
    try:
        value = Decimal(str((job.cost_inputs or {}).get("unit_cost")))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return value if value.is_finite() and value >= 0 else None


def variant_unit_cost(*, variant, recent: int | None = None) -> UnitCost:
    """The mean cost per good unit of the variant's last `recent` completed print jobs with a cost
    (PRODUCTION_UNIT_COST_RECENT_JOBS when None), each job's failed attempts included."""
    recent = settings.PRODUCTION_UNIT_COST_RECENT_JOBS if recent is None else recent
    if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= 1000:
        raise InvalidInput(_("The number of recent prints is a whole number from 1 to 1000."))
    currency = settings.PRODUCTION_CURRENCY
    jobs = (PrintJob.objects.filter(version__variant=variant, status=PrintJobStatus.COMPLETED,
                                    cost_total__isnull=False, cost_currency=currency)
            .order_by("-finished_at", "-id").only("cost_inputs"))
    amounts = []
    for job in jobs.iterator(chunk_size=100):
        amount = _stored_unit_cost(job)
        if amount is not None:
            amounts.append(amount)
            if len(amounts) == recent:
                break
    return UnitCost(amount=costs.mean(amounts), currency=currency, jobs=len(amounts))


def printed_product(*, variant) -> Product | None:
    """The product the variant's prints go into (the oldest printed product of the variant)."""
    return Product.objects.filter(variant=variant, kind=ProductKind.PRINTED).order_by("id").first()


def variant_margin(*, variant, unit_cost: UnitCost | None = None) -> costs.Margin:
    """The variant's unit cost against its product's sale price (gross, VAT at PRODUCTION_VAT_PERCENT): the net
    price, the margin and its percentage of the net price. A product priced in another currency than
    PRODUCTION_CURRENCY, or none, gives no price and no margin."""
    unit_cost = unit_cost or variant_unit_cost(variant=variant)
    product = printed_product(variant=variant)
    gross = product.sale_price if product is not None and product.currency == unit_cost.currency else None
    return costs.margin(currency=unit_cost.currency, unit_cost=unit_cost.amount, sale_price_gross=gross,
                        vat_percent=settings.PRODUCTION_VAT_PERCENT)


@dataclass(frozen=True)
class VariantCost:
    variant_id: int
    sku: str
    unit_cost: UnitCost
    margin: costs.Margin


def variant_cost(*, variant) -> VariantCost:
    unit_cost = variant_unit_cost(variant=variant)
    return VariantCost(variant_id=variant.pk, sku=variant.sku, unit_cost=unit_cost,
                       margin=variant_margin(variant=variant, unit_cost=unit_cost))


def variant_cost_get(*, variant_id: int, organization) -> VariantCost:
    """A variant's unit cost and margin for an API key: the lab's keys see every variant, a partner's only the
    variants of its own designs (another's, also one shared with partners, is not found); customers are refused."""
    owner = print_queue_owner(organization=organization)
    variant = catalog_selectors.variant_get(variant_id=variant_id,
                                            partner=print_queue_catalog_scope(organization=owner))
    if owner.kind != OrganizationKind.LAB and variant.model.designer_id != owner.pk:
        raise NotFound(_("No variant with id %(id)s.") % {"id": variant_id})
    return variant_cost(variant=variant)


# --- uploads from slicers ------------------------------------------------------------------------


def _sku_candidates(*, name: str, folder: str) -> list[str]:
    """The SKUs a file's folder and name may stand for, best first (SLICER_UPLOAD_SKU_RULES)."""
    candidates = []
    for rule in settings.SLICER_UPLOAD_SKU_RULES:
        if rule == "folder":
            first = folder.strip("/").split("/", 1)[0]
            if first:
                candidates.append(first)
        elif rule == "prefix":
            suffix = catalog_services.sliced_file_suffix(name=name)
            stem = name[: -len(suffix)] if suffix else name
            parts = stem.split(settings.SLICER_UPLOAD_SKU_SEPARATOR)
            # "PLA_BOX_v2": "PLA_BOX_v2", then "PLA_BOX", then "PLA" (SKUs may hold the separator too)
            candidates += [settings.SLICER_UPLOAD_SKU_SEPARATOR.join(parts[:end]) for end in range(len(parts), 0, -1)]
    return [candidate for candidate in candidates if candidate]


def slicer_upload_variant(*, name: str, folder: str = "") -> ModelVariant | None:
    """The catalog variant an uploaded file is for, by its folder or name prefix (any letter case); None if none."""
    candidates = _sku_candidates(name=name, folder=folder)
    if not candidates:
        return None
    matching = Q()
    for candidate in candidates:
        matching |= Q(sku__iexact=candidate)
    found = {variant.sku.lower(): variant for variant in ModelVariant.objects.filter(matching)}
    for candidate in candidates:
        if candidate.lower() in found:
            return found[candidate.lower()]
    return None

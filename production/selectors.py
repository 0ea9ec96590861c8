"""Every non-trivial read of production."""

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from catalog.models import VariantVersion
from fablab.choices import OrganizationKind
from fablab.exceptions import NotFound, PermissionDenied
from printers import files as printer_files
from printers.files import PrinterFile
from production.choices import WAITING_STATUSES, AttemptOutcome, PrintJobStatus
from production.feasibility import plate_fields, reason_text
from production.models import PrintAttempt, PrinterFileImport, PrintJob


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


def production_kpis() -> list[dict]:
    counts = PrintJob.objects.aggregate(
        queued=Count("pk", filter=Q(status=PrintJobStatus.QUEUED)),
        blocked=Count("pk", filter=Q(status=PrintJobStatus.QUEUED, feasible=False)),
        printing=Count("pk", filter=Q(status=PrintJobStatus.PRINTING)),
    )
    return [
        {"label": _("Queued jobs"), "value": counts["queued"]},
        {"label": _("Queued, cannot print now"), "value": counts["blocked"]},
        {"label": _("Printing"), "value": counts["printing"]},
    ]


def print_job_booked_grams(*, job: PrintJob) -> list[float]:
    """Grams booked per filament slot (slot 1 first) over all the job's attempts; empty before any booking."""
    from production.models import SlotAllocation

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

"""Every non-trivial read of production."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from fablab.choices import OrganizationKind
from fablab.exceptions import NotFound, PermissionDenied
from printers import files as printer_files
from printers.files import PrinterFile
from production.choices import WAITING_STATUSES, PrintJobStatus
from production.feasibility import reason_text
from production.models import PrinterFileImport, PrintJob


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

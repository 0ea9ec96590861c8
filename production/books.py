"""The books an accountant gets from production: print jobs with their costs and purpose; and the way to the
inventory's material and sales books (inventory.books), so that the API and the admin ask one module.

Print jobs: one row per job and currency for the attempts that ended in the period (a day range in the lab's
time zone, both ends included), so a job whose attempts span two months is split between them and counted
once. A row's cost parts are the sums of those attempts' stored costs (production.costs: each attempt's cost
is computed when it ends); for a job whose every attempt ended in the period they are the job's own cost.
An attempt whose cost could not be computed adds nothing and is counted under "without cost".
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Min, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab import exports
from fablab.exports import AMOUNT, DATE, GRAMS, INTEGER, Column, Table
from inventory import books as inventory_books
from production.models import PrintAttempt, PrintJob

COST_PARTS = ("cost_material", "cost_energy", "cost_machine", "cost_labour", "cost_total")
MILLIGRAM = Decimal("0.001")

BOOKS = ("print-jobs", "material", "sales")


def ended_attempts(*, start: date, end: date) -> QuerySet[PrintAttempt]:
    """The print attempts that ended in the period (completed, failed or cancelled)."""
    begin, after = exports.period_bounds(start, end)
    return PrintAttempt.objects.filter(finished_at__gte=begin, finished_at__lt=after)


def print_jobs_table(*, start: date, end: date, jobs: QuerySet[PrintJob] | None = None) -> Table:
    """Print jobs with their costs and purpose for the period; `jobs` narrows the rows (the admin's filtered or
    selected jobs), the period always applies."""
    attempts = ended_attempts(start=start, end=end)
    if jobs is not None:
        attempts = attempts.filter(job__in=jobs.values("pk"))
    attempts = (attempts.select_related("job__version__variant__model", "printer")
                .annotate(grams=Sum("slots__grams_booked")).order_by("finished_at", "id"))
    grouped: dict[tuple[int, str], dict] = {}
    for attempt in attempts:
        job = attempt.job
        costed = attempt.cost_total is not None and attempt.cost_currency
        currency = attempt.cost_currency if costed else settings.PRODUCTION_CURRENCY
        row = grouped.get((job.pk, currency))
        if row is None:
            variant = job.version.variant
            row = grouped[(job.pk, currency)] = {
                "job": job.pk, "reference": job.reference, "sku": variant.sku,
                "name": f"{variant.model.name} {variant.name}".strip(), "purpose": job.get_purpose_display(),
                "status": job.get_status_display(), "copies": job.copies, "copies_done": job.copies_done,
                "attempts": 0, "uncosted": 0, "grams": Decimal("0"), "currency": currency,
                **dict.fromkeys(COST_PARTS, None),
            }
        row["date"] = timezone.localtime(attempt.finished_at).date()
        row["printer"] = str(attempt.printer) if attempt.printer_id else ""
        row["attempts"] += 1
        row["grams"] += Decimal(str(attempt.grams or 0))
        if costed:
            for part in COST_PARTS:
                row[part] = (row[part] or Decimal("0")) + getattr(attempt, part)
        else:
            row["uncosted"] += 1
    rows = list(grouped.values())
    for row in rows:
        row["grams"] = row["grams"].quantize(MILLIGRAM)
    rows.sort(key=lambda row: (row["date"], row["job"]))
    columns = [
        Column("date", _("Date"), DATE),
        Column("job", _("Print job"), INTEGER),
        Column("reference", _("Reference")),
        Column("sku", _("SKU")),
        Column("name", _("Item")),
        Column("purpose", _("Purpose")),
        Column("status", _("Status")),
        Column("printer", _("Printer")),
        Column("copies", _("Copies"), INTEGER),
        Column("copies_done", _("Copies done"), INTEGER),
        Column("attempts", _("Attempts"), INTEGER),
        Column("uncosted", _("Attempts without cost"), INTEGER),
        Column("grams", _("Filament (g)"), GRAMS),
        Column("cost_material", _("Material"), AMOUNT),
        Column("cost_energy", _("Energy"), AMOUNT),
        Column("cost_machine", _("Machine"), AMOUNT),
        Column("cost_labour", _("Labour"), AMOUNT),
        Column("cost_total", _("Total cost"), AMOUNT),
        Column("currency", _("Currency")),
    ]
    totals = exports.totals_by_currency(rows, currency=settings.PRODUCTION_CURRENCY, label_key="reference",
                                        sum_keys=("attempts", "uncosted", "grams", *COST_PARTS))
    return Table(name=f"print-jobs-{start.isoformat()}-{end.isoformat()}", columns=columns, rows=rows,
                 totals=totals)


def books_table(*, book: str, start: date, end: date) -> Table:
    """One of the books (BOOKS) for the period."""
    if book == "print-jobs":
        return print_jobs_table(start=start, end=end)
    if book == "material":
        return inventory_books.material_table(start=start, end=end)
    if book == "sales":
        return inventory_books.sales_table(start=start, end=end)
    raise ValueError(book)


def print_jobs_table_for(*, jobs: QuerySet[PrintJob]) -> Table:
    """The print-jobs book of the admin's jobs: the period from the first to the last end of their attempts."""
    span = PrintAttempt.objects.filter(job__in=jobs.values("pk"), finished_at__isnull=False).aggregate(
        first=Min("finished_at"), last=Max("finished_at"))
    if span["first"] is None:
        start = end = timezone.localdate()
    else:
        start, end = timezone.localdate(span["first"]), timezone.localdate(span["last"])
    return print_jobs_table(start=start, end=end, jobs=jobs)

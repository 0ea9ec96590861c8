"""Restocking printed products: what production adds to inventory's recommendations, and the one action that
queues the print jobs.

inventory.restock forecasts each product's demand and computes its reorder point and quantity; it asks
production two things about a printed product:

- its lead time: the wait in the print queue (the printing hours of the waiting jobs, plates × each plate's
  estimate, shared among the active printers) plus the print of one plate of the variant's current version
  (its slicer estimate): the time until the first new units are on the shelf;
- the units already on their way: the plates still to print of its variant's jobs that wait or are on a
  printer, times the units a plate makes.

`restock_list` gives one row per printed product that sold, with the plates to print:
ceil(quantity / units per plate). `restock_print_jobs_create` queues, for the products asked for, one print
job of plate 1 of the variant's current version with that many copies (split into jobs of at most
MAX_COPIES), all of them or none.
"""

import math
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from inventory import restock as inventory_restock
from inventory.choices import ProductKind
from inventory.models import Product
from printers import selectors as printer_selectors
from production import services
from production.choices import ON_PRINTER_STATUSES, WAITING_STATUSES
from production.models import MAX_COPIES, PrintJob
from production.selectors import plate_estimated_seconds, print_job_queued_seconds

HOURS_PER_WEEK = 7 * 24
RESTOCK_PLATE = 1
MAX_PRODUCTS = 500


@dataclass(frozen=True)
class RestockRow:
    recommendation: inventory_restock.Recommendation
    queue_wait_hours: float
    print_hours: float
    units_per_plate: int

    @property
    def product(self) -> Product:
        return self.recommendation.product

    @property
    def version(self):
        return self.product.variant.current_version

    @property
    def lead_time_hours(self) -> float:
        return self.recommendation.lead_time_weeks * HOURS_PER_WEEK

    @property
    def plates(self) -> int:
        return math.ceil(self.recommendation.quantity / self.units_per_plate)

    @property
    def can_queue(self) -> bool:
        """Something to print, and a current version to print it from."""
        return self.plates > 0 and self.version is not None


def units_per_plate(*, variant) -> int:
    """The units one print of the variant's plate puts on the shelf: the figure production books when a print
    completes (the catalog does not record several objects per plate yet)."""
    return services.UNITS_PER_PLATE


def queue_wait_hours() -> float:
    """Hours until a job queued now reaches a printer: the waiting jobs' printing hours shared among the active
    printers (all of them on one printer when none is active)."""
    printers = printer_selectors.printer_list().filter(is_active=True).count()
    return print_job_queued_seconds() / 3600 / max(1, printers)


def variant_print_hours(*, variant) -> float:
    """The slicer's estimate of one print of the restock plate of the variant's current version; 0 unknown."""
    version = variant.current_version
    if version is None:
        return 0.0
    return (plate_estimated_seconds(version.sliced_file, RESTOCK_PLATE) or 0.0) / 3600


def units_queued_by_variant() -> dict[int, int]:
    """Plates still to print (waiting or on a printer) per catalog variant, times units per plate."""
    rows = (PrintJob.objects.filter(status__in=WAITING_STATUSES | ON_PRINTER_STATUSES)
            .values("version__variant_id").annotate(plates=Sum(F("copies") - F("copies_done"))))
    return {row["version__variant_id"]: max(0, row["plates"] or 0) * services.UNITS_PER_PLATE for row in rows}


def restock_list(*, product_ids=None, today: date | None = None) -> list[RestockRow]:
    """A row per printed product that sold in the history window (of `product_ids` when given), the most plates
    first."""
    products = Product.objects.filter(kind=ProductKind.PRINTED, variant__isnull=False).select_related(
        "variant__current_version__sliced_file")
    if product_ids is not None:
        products = products.filter(pk__in=list(product_ids))
    products = list(products)
    wait = queue_wait_hours()
    queued = units_queued_by_variant()
    print_hours = {product.pk: variant_print_hours(variant=product.variant) for product in products}
    recommendations = inventory_restock.restock_recommendations(
        products=products, today=today,
        lead_time_weeks=lambda product: (wait + print_hours[product.pk]) / HOURS_PER_WEEK,
        units_queued=lambda product: queued.get(product.variant_id, 0),
    )
    rows = [RestockRow(recommendation=item, queue_wait_hours=wait, print_hours=print_hours[item.product.pk],
                       units_per_plate=units_per_plate(variant=item.product.variant))
            for item in recommendations]
    rows.sort(key=lambda row: (-row.plates, -row.recommendation.per_week, row.product.sku))
    return rows


def _product_ids(product_ids) -> list[int]:
    if isinstance(product_ids, str | bytes) or not hasattr(product_ids, "__iter__"):
        raise InvalidInput(_("Name the products to restock as a list of ids."))
    ids = []
    for value in product_ids:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(_("%(value)r is not a product id.") % {"value": value}) from None
        if isinstance(value, bool) or number < 1 or str(number) != str(value).strip():
            raise InvalidInput(_("%(value)r is not a product id.") % {"value": value})
        if number not in ids:
            ids.append(number)
    if not ids:
        raise InvalidInput(_("Choose at least one product to restock."))
    if len(ids) > MAX_PRODUCTS:
        raise InvalidInput(_("At most %(max)s products can be restocked at once.") % {"max": MAX_PRODUCTS})
    return ids


@transaction.atomic
def restock_print_jobs_create(*, product_ids, user, today: date | None = None) -> list[PrintJob]:
    """Queue the recommended plates of each product asked for; every product is checked first and any that
    cannot be restocked (unknown, bought in, not sold lately, nothing to print, no printable version) refuses
    the whole request, so that nothing is queued by half."""
    ids = _product_ids(product_ids)
    # Locked until the jobs are queued: a second request for the same products waits, then sees them queued.
    known = set(Product.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in known]
    if missing:
        raise NotFound(_("No product with id %(ids)s.") % {"ids": ", ".join(map(str, missing))})
    rows = {row.product.pk: row for row in restock_list(product_ids=ids, today=today)}
    problems = []
    for product in Product.objects.filter(pk__in=ids).select_related("variant__current_version__sliced_file"):
        row = rows.get(product.pk)
        if product.kind != ProductKind.PRINTED:
            problems.append(_("%(sku)s is bought in, not printed.") % {"sku": product.sku})
        elif row is None:
            problems.append(_("%(sku)s has not sold lately: there is no forecast to restock it by.")
                            % {"sku": product.sku})
        elif row.plates <= 0:
            problems.append(_("%(sku)s needs no restock: its stock and queued units cover the forecast.")
                            % {"sku": product.sku})
        elif row.version is None:
            problems.append(_("%(sku)s has no current catalog version to print.") % {"sku": product.sku})
        else:
            try:
                services.print_job_check_plate(version=row.version, plate=RESTOCK_PLATE)
            except InvalidInput as exc:
                problems.append(f"{product.sku}: {exc.message}")
    if problems:
        raise InvalidInput(" ".join(problems))
    jobs = []
    for pk in ids:
        row = rows[pk]
        left = row.plates
        while left > 0:
            copies = min(left, MAX_COPIES)
            jobs.append(services.print_job_create(
                version=row.version, plate=RESTOCK_PLATE, copies=copies, queued_by=user,
                reference=_("Restock %(sku)s") % {"sku": row.product.sku},
                notes=_("Forecast %(per_week).1f units per week (%(method)s); %(quantity)s units recommended.")
                % {"per_week": row.recommendation.per_week, "method": row.recommendation.method,
                   "quantity": row.recommendation.quantity},
            ))
            left -= copies
    return jobs

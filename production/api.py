"""Production endpoints for the lab's own integrations (API keys of the organization of kind 'lab').

The router is mounted at the API's root; its paths name the printer they are about:

- GET  /printers/{id}/files: the files on the printer's storage (a read key of the lab);
- POST /printers/{id}/files/import: download one into the catalog (a write key of the lab);
  body `{"path": "/cache/cube.gcode.3mf", "variant_id": 12}`, without `variant_id` a new model
  named after the file is made. 202: the download is queued; a background task carries it out;
- GET  /printers/{id}/files/imports/{import_id}: its status, and once done the new version with
  its metadata status.

Partners' keys are refused (403): a printer's storage is the lab's, shared printers or not.

The print queue, for partners (their own designs and what the lab shares with them) and the lab's own
systems; customers' keys are refused (403):

- POST /production/jobs (write key, `Idempotency-Key` header): queue a catalog version; 201 with the job,
  and 201 with the same job when the same key of the same organization comes again;
- GET  /production/jobs (filters `status`, `version_id`) and /production/jobs/{id}: your jobs, in queue
  order (priority, hand-set position, age);
- POST /production/jobs/{id}/cancel (write key): cancel a job that has not ended (409 otherwise);
- GET  /production/versions/{version_id}/success-rate: how often prints of a catalog version came out,
  with the Wilson 95 % interval; a partner asks only about versions of its own designs.
- GET  /production/variants/{id}/cost: what a unit of a catalog variant costs to print and its margin
  against the product's sale price; a partner only for the variants of its own designs.

- GET  /production/restock (a read key of the lab; partners and customers 403): the restock recommendation
  of every printed product that sold lately (production.restock), the most plates to print first.

A partner sees and queues only its own jobs; a lab key also sees the jobs staff queued in the admin.
Another organization's job or a version a partner may not see answers 404.
"""

from django.http import HttpRequest
from django.utils import translation
from ninja import Path, Query, Router, Status
from ninja.pagination import paginate

from catalog import selectors as catalog_selectors
from fablab import exports
from fablab.api_auth import (
    idempotency_key,
    lab_read_key,
    lab_write_key,
    partner_or_lab_read_key,
    partner_or_lab_write_key,
    tenant,
)
from fablab.api_pagination import Pagination
from printers import selectors as printer_selectors
from production import books, restock, selectors, services
from production.schemas import (
    MAX_ID,
    BooksQueryIn,
    PrinterFileImportIn,
    PrinterFileImportOut,
    PrinterFileOut,
    PrintJobCreateIn,
    PrintJobFilterIn,
    PrintJobOut,
    RestockOut,
    VariantCostOut,
    VersionSuccessRateOut,
)

router = Router(tags=["printer files"], auth=partner_or_lab_read_key)


@router.get("/printers/{printer_id}/files", response=list[PrinterFileOut], auth=lab_read_key,
            summary="The files on a printer's storage, newest first")
def printer_files(request: HttpRequest, printer_id: int):
    """`downloadable`: the file can go into the catalog. 503 when the printer cannot be reached, 502 when it
    refuses the stored credentials."""
    printer = printer_selectors.printer_get(printer_id=printer_id)
    return selectors.printer_file_list(printer=printer)


@router.post("/printers/{printer_id}/files/import", response={202: PrinterFileImportOut}, auth=lab_write_key,
             summary="Download a file from a printer into the catalog, in the background")
def printer_file_import(request: HttpRequest, printer_id: int, payload: PrinterFileImportIn):
    """`path` as the file list gives it; 422 for a path that is not a plain absolute path. The download runs in
    the background: poll `GET /printers/{id}/files/imports/{import_id}` until `status` is `succeeded` (with the
    new catalog version) or `failed` (with `error`: not on the printer any more, too large, not a file the
    catalog takes, identical to the variant's current version, printer unreachable). Asking again while the
    same file is still waiting or downloading answers with that download."""
    printer = printer_selectors.printer_get(printer_id=printer_id)
    variant = catalog_selectors.variant_get(variant_id=payload.variant_id) if payload.variant_id else None
    item = services.printer_file_import_request(printer=printer, path=payload.path, user=request.auth.created_by,
                                                variant=variant)
    return Status(202, item)


@router.get("/printers/{printer_id}/files/imports/{import_id}", response=PrinterFileImportOut, auth=lab_read_key,
            summary="One download from a printer into the catalog")
def printer_file_import_status(request: HttpRequest, printer_id: int, import_id: int):
    """`catalog_version`: once succeeded, the new version as the catalog API shows it."""
    printer = printer_selectors.printer_get(printer_id=printer_id)
    return selectors.printer_file_import_get(printer=printer, import_id=import_id)


# --- the print queue -----------------------------------------------------------------------------


def _queue_owner(request: HttpRequest):
    return selectors.print_queue_owner(organization=tenant(request))


@router.post("/production/jobs", response={201: PrintJobOut}, auth=partner_or_lab_write_key, tags=["production"],
             summary="Queue a catalog version for printing")
def print_job_create(request: HttpRequest, payload: PrintJobCreateIn):
    """Needs a write key and an `Idempotency-Key` header (1 to 200 characters, unique per real-world order).
    The answer is 201 with the job, also when the same key of your organization comes again: then it is the
    job the first request made, unchanged, whatever the body says.

    `version_id`: a version the catalog API shows you (404 otherwise); a multi-plate 3MF takes `plate`.
    The job is checked at once: `feasibility` says whether it can be printed now and, if not, why."""
    organization = _queue_owner(request)
    key = idempotency_key(request)
    version = catalog_selectors.version_get_by_id(version_id=payload.version_id,
                                                  partner=selectors.print_queue_catalog_scope(organization=organization))
    job = services.print_job_create(
        version=version, copies=payload.copies, priority=payload.priority, plate=payload.plate, due_at=payload.due,
        purpose=payload.purpose, reference=payload.reference, organization=organization, idempotency_key=key,
        queued_by=request.auth.created_by,
    )
    return Status(201, selectors.print_job_get(job_id=job.pk, organization=organization))


@router.get("/production/jobs", response=list[PrintJobOut], auth=partner_or_lab_read_key, tags=["production"],
            summary="Your print jobs, in queue order")
@paginate(Pagination)
def print_job_list(request: HttpRequest, filters: Query[PrintJobFilterIn]):
    """Filter by `status` and `version_id`. Order: priority (urgent first), then the lab's hand ordering, then
    age."""
    return selectors.print_job_list(organization=_queue_owner(request), status=filters.status or "",
                                    version_id=filters.version_id)


@router.get("/production/jobs/{job_id}", response=PrintJobOut, auth=partner_or_lab_read_key, tags=["production"],
            summary="One print job")
def print_job_detail(request: HttpRequest, job_id: int):
    return selectors.print_job_get(job_id=job_id, organization=_queue_owner(request))


@router.post("/production/jobs/{job_id}/cancel", response=PrintJobOut, auth=partner_or_lab_write_key,
             tags=["production"], summary="Cancel a print job")
def print_job_cancel(request: HttpRequest, job_id: int):
    """409 when the job already ended (completed, failed or cancelled)."""
    organization = _queue_owner(request)
    job = selectors.print_job_get(job_id=job_id, organization=organization)
    services.print_job_cancel(job=job)
    return selectors.print_job_get(job_id=job_id, organization=organization)


@router.get("/production/versions/{version_id}/success-rate", response=VersionSuccessRateOut,
            auth=partner_or_lab_read_key, tags=["production"],
            summary="How often prints of a catalog version came out")
def version_success_rate(request: HttpRequest, version_id: int = Path(..., ge=1, le=MAX_ID)):
    """`rate`: completed over attempts (every organization's prints of the version that reached a printer and
    ended), with the Wilson score 95 % interval `low`..`high`; all three null before the first print ends.
    A partner may ask about the versions of its own designs (404 for any other); the lab's keys about any."""
    return selectors.version_success_rate_get(version_id=version_id, organization=tenant(request))


@router.get("/production/variants/{variant_id}/cost", response=VariantCostOut, auth=partner_or_lab_read_key,
            tags=["production"],
            summary="What a unit of a catalog variant costs to print, and its margin")
def variant_cost(request: HttpRequest, variant_id: int = Path(..., ge=1, le=MAX_ID)):
    """`unit_cost`: the mean cost per good unit over the variant's recent completed prints, each print's failed
    attempts included; `margin`: the product's net sale price less it. A partner asks only about the variants
    of its own designs (any other answers 404); customers' keys get 403."""
    return selectors.variant_cost_get(variant_id=variant_id, organization=tenant(request))


# --- market events (production/api_events.py) -----------------------------------------------------------------

from production.api_events import router as events_router  # noqa: E402

router.add_router("", events_router)

# --- the books: exports for the accountant (production.books) ------------------------------------

books_router = Router(tags=["books"], auth=lab_read_key)


def _books_file(request: HttpRequest, book: str, query):
    language = translation.get_language()
    fmt = exports.resolve_format(query.format, language=language)
    table = books.books_table(book=book, start=query.start, end=query.end)
    return exports.response(table, fmt, language=language)


@books_router.get("/print-jobs", summary="Print jobs with their costs and purpose, as CSV or XLSX")
def books_print_jobs(request: HttpRequest, query: Query[BooksQueryIn]):
    """One row per job for the attempts that ended from `from` to `to` (days in the lab's time zone, both
    included), the cost parts summed over them, and a totals row. `format`: `csv` (German conventions when the
    request's language is German, e.g. `Accept-Language: de`), `csv-de` or `xlsx`. 422 for a period that runs
    backwards or is longer than ten years, or an unknown format. The lab's keys only."""
    return _books_file(request, "print-jobs", query)


@books_router.get("/material", summary="Filament used per month and filament, with its cost, as CSV or XLSX")
def books_material(request: HttpRequest, query: Query[BooksQueryIn]):
    """The consuming rows of the spool ledger (prints, failed prints, waste) in the period, grams and cost per
    month and filament, and a totals row; parameters as for print-jobs."""
    return _books_file(request, "material", query)


@books_router.get("/sales", summary="Sales and returns with net, VAT and gross, as CSV or XLSX")
def books_sales(request: HttpRequest, query: Query[BooksQueryIn]):
    """Every sale and return dated in the period with net, VAT (PRODUCTION_VAT_PERCENT) and gross, and a totals
    row; parameters as for print-jobs."""
    return _books_file(request, "sales", query)


# --- restocking ----------------------------------------------------------------------------------


@router.get("/production/restock", response=list[RestockOut], auth=lab_read_key, tags=["production"],
            summary="Restock recommendations for printed products")
@paginate(Pagination)
def restock_list(request: HttpRequest):
    """One row per printed product that sold in the last RESTOCK_HISTORY_WEEKS weeks, the most plates first:
    the forecast per week and its method, stock, units already queued, lead time (queue wait + one plate's
    print), reorder point, recommended units and the plates to print. Only the lab's own keys; partners' and
    customers' keys get 403."""
    return restock.restock_list()

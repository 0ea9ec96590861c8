"""Production endpoints for the lab's own integrations (API keys of the organization of kind 'lab').

The router is mounted at the API's root; its paths name the printer they are about:

- GET  /printers/{id}/files: the files on the printer's storage (a read key of the lab);
- POST /printers/{id}/files/import: download one into the catalog (a write key of the lab);
  body `{"path": "/cache/cube.gcode.3mf", "variant_id": 12}`, without `variant_id` a new model
  named after the file is made. 202: the download is queued; a background task carries it out;
- GET  /printers/{id}/files/imports/{import_id}: its status, and once done the new version with
  its metadata status.

Partners' keys are refused (403): a printer's storage is the lab's, shared printers or not.
"""

from django.http import HttpRequest
from ninja import Router, Status

from catalog import selectors as catalog_selectors
from fablab.api_auth import lab_read_key, lab_write_key
from printers import selectors as printer_selectors
from production import selectors, services
from production.schemas import PrinterFileImportIn, PrinterFileImportOut, PrinterFileOut

router = Router(tags=["printer files"])


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

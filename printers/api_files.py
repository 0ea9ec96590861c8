"""Printer file endpoints for the lab's own integrations (API keys of the organization of kind 'lab').

`files_router` is mounted next to the printers router (`api.add_router("/printers", files_router)`):

- GET  /printers/{id}/files: the files on the printer's storage (a read key of the lab);
- POST /printers/{id}/files/import: download one into the catalog (a write key of the lab);
  body `{"path": "/cache/cube.gcode.3mf", "variant_id": 12}`, without `variant_id` a new model
  named after the file is made. 202: the download is queued; a background task carries it out;
- GET  /printers/{id}/files/imports/{import_id}: its status, and once done the new version with
  its metadata status.

Partners' keys are refused (403): a printer's storage is the lab's, shared printers or not.
"""

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status

from catalog import selectors as catalog_selectors
from fablab.api_auth import lab_read_key, lab_write_key
from printers import files, selectors


class PrinterFileOut(Schema):
    path: str
    name: str
    size_bytes: int | None
    modified: datetime | None
    folder: str
    downloadable: bool


class PrinterFileImportIn(Schema):
    path: str
    variant_id: int | None = None


class PrinterFileImportOut(Schema):
    id: int
    printer_id: int
    path: str
    status: str  # queued, running, succeeded, failed
    error: str
    created_at: datetime
    finished_at: datetime | None
    # Once succeeded: the catalog version made from the file, with its metadata.
    model_id: int | None = None
    variant_id: int | None = None
    version: int | None = None
    sliced_file_id: int | None = None
    sha256: str | None = None
    metadata_status: str | None = None
    metadata: dict | None = None


def _import_out(item) -> dict:
    data = {"id": item.pk, "printer_id": item.printer_id, "path": item.path, "status": item.status,
            "error": item.error, "created_at": item.created_at, "finished_at": item.finished_at}
    version = item.version
    if version is not None:
        sliced = version.sliced_file
        data.update(model_id=version.variant.model_id, variant_id=version.variant_id, version=version.number,
                    sliced_file_id=sliced.pk, sha256=sliced.sha256, metadata_status=sliced.status,
                    metadata=sliced.metadata)
    return data


files_router = Router(tags=["printer files"])


@files_router.get("/{printer_id}/files", response=list[PrinterFileOut], auth=lab_read_key,
                  summary="The files on a printer's storage, newest first")
def printer_files(request: HttpRequest, printer_id: int):
    """503 when the printer cannot be reached, 502 when it refuses the stored credentials."""
    printer = selectors.printer_get(printer_id=printer_id)
    return files.printer_files_list(printer=printer)


@files_router.post("/{printer_id}/files/import", response={202: PrinterFileImportOut}, auth=lab_write_key,
                   summary="Download a file from a printer into the catalog, in the background")
def printer_file_import(request: HttpRequest, printer_id: int, payload: PrinterFileImportIn):
    """`path` as the file list gives it; 422 for a path that is not a plain absolute path. The download runs in
    the background: poll `GET /printers/{id}/files/imports/{import_id}` until `status` is `succeeded` (with the
    new catalog version) or `failed` (with `error`: not on the printer any more, too large, not a file the
    catalog takes, identical to the variant's current version, printer unreachable). Asking again while the
    same file is still waiting or downloading answers with that download."""
    printer = selectors.printer_get(printer_id=printer_id)
    variant = catalog_selectors.variant_get(variant_id=payload.variant_id) if payload.variant_id else None
    item = files.printer_file_import_request(printer=printer, path=payload.path, user=request.auth.created_by,
                                             variant=variant)
    return Status(202, _import_out(item))


@files_router.get("/{printer_id}/files/imports/{import_id}", response=PrinterFileImportOut, auth=lab_read_key,
                  summary="One download from a printer into the catalog")
def printer_file_import_status(request: HttpRequest, printer_id: int, import_id: int):
    printer = selectors.printer_get(printer_id=printer_id)
    return _import_out(selectors.printer_file_import_get(printer=printer, import_id=import_id))

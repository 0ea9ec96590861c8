"""Read-only printer endpoints for partners.

Printers belong to the lab. A partner sees only the printers staff marked
`shared_with_partners` (and active), with their live state, jobs and transitions,
and never a printer's host, port, serial or credentials.
"""

from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from fablab.api_auth import tenant
from fablab.api_pagination import Pagination
from printers import selectors
from printers.schemas import PrinterJobOut, PrinterOut, StateTransitionOut

router = Router(tags=["printers"])


@router.get("", response=list[PrinterOut], summary="Printers the lab shares with partners")
@paginate(Pagination)
def printer_list(request: HttpRequest):
    return selectors.printer_list(partner=tenant(request))


@router.get("/{printer_id}", response=PrinterOut, summary="A shared printer with its live state")
def printer_detail(request: HttpRequest, printer_id: int):
    return selectors.printer_get(printer_id=printer_id, partner=tenant(request))


@router.get("/{printer_id}/jobs", response=list[PrinterJobOut], summary="Jobs of a shared printer, newest first")
@paginate(Pagination)
def printer_jobs(request: HttpRequest, printer_id: int):
    printer = selectors.printer_get(printer_id=printer_id, partner=tenant(request))
    return selectors.printer_job_list(printer=printer)


@router.get("/{printer_id}/transitions", response=list[StateTransitionOut],
            summary="State changes of a shared printer, newest first")
@paginate(Pagination)
def printer_transitions(request: HttpRequest, printer_id: int):
    printer = selectors.printer_get(printer_id=printer_id, partner=tenant(request))
    return selectors.printer_transition_list(printer=printer)

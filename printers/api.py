"""Printer endpoints for partners.

Printers belong to the lab. A partner sees only the printers staff marked
`shared_with_partners` (and active), with their live state, jobs and transitions,
and never a printer's host, port, serial or credentials. With a write key a partner
may pause, resume or stop the job of a shared printer or switch its light; the answer is
the command row (at once: the printer is asked in the background), which the partner polls
until it succeeded, failed or expired. The lab's own keys see and do the same; customers' keys get 403.
"""

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from fablab.api_auth import idempotency_key, partner_or_lab_read_key, partner_or_lab_write_key, tenant
from fablab.api_pagination import Pagination
from printers import selectors, services
from printers.schemas import PrinterCommandIn, PrinterCommandOut, PrinterJobOut, PrinterOut, StateTransitionOut

router = Router(tags=["printers"], auth=partner_or_lab_read_key)


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


@router.post("/{printer_id}/commands", response={202: PrinterCommandOut}, auth=partner_or_lab_write_key,
             summary="Pause, resume or stop the job of a shared printer, or switch its light")
def printer_command_create(request: HttpRequest, printer_id: int, payload: PrinterCommandIn):
    """Needs a write key and an `Idempotency-Key` header (the same key again returns the same command).

    The answer is the command, at once: `pending` until the printer listener (Bambu) or a background
    task (PrusaLink) takes it, then `sent`, then `succeeded` or `failed`; `expired` when nobody took
    it in time. 409 when the printer's state does not allow the command (e.g. resume while printing).
    """
    printer = selectors.printer_get(printer_id=printer_id, partner=tenant(request))
    key = idempotency_key(request)
    command = services.printer_command_request(printer=printer, action=payload.action, light_on=payload.on,
                                               organization=tenant(request), idempotency_key=key)
    return Status(202, command)


@router.get("/{printer_id}/commands", response=list[PrinterCommandOut],
            summary="Your commands to a shared printer, newest first")
@paginate(Pagination)
def printer_commands(request: HttpRequest, printer_id: int):
    printer = selectors.printer_get(printer_id=printer_id, partner=tenant(request))
    return selectors.printer_command_list(printer=printer, organization=tenant(request))


@router.get("/{printer_id}/commands/{command_id}", response=PrinterCommandOut,
            summary="One of your commands to a shared printer, to poll its status")
def printer_command_detail(request: HttpRequest, printer_id: int, command_id: int):
    return selectors.printer_command_get(printer_id=printer_id, command_id=command_id, partner=tenant(request))

"""Every non-trivial read of the printers app."""

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound
from printers.choices import ACTIVE_STATES, Driver, JobOutcome, PrinterState
from printers.models import Printer, PrinterJob, StateTransition


def printers_to_poll() -> QuerySet[Printer]:
    return Printer.objects.filter(driver=Driver.PRUSALINK, is_active=True).exclude(credentials_ciphertext=b"")


def printer_list(*, partner=None) -> QuerySet[Printer]:
    """Printers with their live state. `partner`: only what the lab shares with partners."""
    qs = Printer.objects.select_related("live").order_by("name")
    if partner is not None:
        qs = qs.filter(shared_with_partners=True, is_active=True)
    return qs


def printer_get(*, printer_id: int, partner=None) -> Printer:
    printer = printer_list(partner=partner).filter(pk=printer_id).first()
    if printer is None:
        raise NotFound(_("Printer %(id)s does not exist.") % {"id": printer_id})
    return printer


def printer_job_list(*, printer: Printer) -> QuerySet[PrinterJob]:
    return PrinterJob.objects.filter(printer=printer).order_by("-started_at", "-id")


def printer_transition_list(*, printer: Printer) -> QuerySet[StateTransition]:
    return StateTransition.objects.filter(printer=printer).order_by("-at", "-id")


def printers_kpis() -> list[dict]:
    counts = Printer.objects.filter(is_active=True).aggregate(
        total=Count("pk"),
        printing=Count("pk", filter=Q(live__state__in=ACTIVE_STATES)),
        attention=Count("pk", filter=Q(live__state__in=[PrinterState.NEEDS_ATTENTION, PrinterState.FAILED])),
        offline=Count("pk", filter=Q(live__state=PrinterState.OFFLINE)),
    )
    return [
        {"label": _("Printers"), "value": counts["total"]},
        {"label": _("Printing"), "value": counts["printing"]},
        {"label": _("Need attention"), "value": counts["attention"]},
        {"label": _("Offline"), "value": counts["offline"]},
        {"label": _("Jobs running"), "value": PrinterJob.objects.filter(outcome=JobOutcome.RUNNING).count()},
    ]

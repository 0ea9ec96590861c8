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


def printer_fleet() -> list[dict]:
    """One card per active printer for the fleet page (JSON-ready)."""
    from printers.choices import PRINTER_STATE_COLORS

    cards = []
    for printer in Printer.objects.filter(is_active=True).select_related("live").order_by("name"):
        live = getattr(printer, "live", None)
        state = live.state if live else PrinterState.OFFLINE
        active = state in ACTIVE_STATES or state in (PrinterState.FINISHED,)
        cards.append({
            "id": printer.pk,
            "name": printer.name,
            "model": printer.model,
            "driver": printer.driver,
            "location": printer.location,
            "state": state,
            "state_label": str(PrinterState(state).label),
            "color": PRINTER_STATE_COLORS[PrinterState(state)],
            "progress_percent": live.progress_percent if live and active else None,
            "remaining_seconds": live.remaining_seconds if live and active else None,
            "layer": live.layer if live and active else None,
            "total_layers": live.total_layers if live and active else None,
            "current_file": (live.current_file if live else "") or "",
            "nozzle_c": live.nozzle_temp_c if live else None,
            "nozzle_target_c": live.nozzle_target_c if live else None,
            "bed_c": live.bed_temp_c if live else None,
            "bed_target_c": live.bed_target_c if live else None,
            "chamber_c": live.chamber_temp_c if live else None,
            "filaments": [
                {"slot": s.get("slot"), "type": s.get("type", ""), "colour": s.get("colour", ""),
                 "loaded": bool(s.get("loaded")), "remaining_percent": s.get("remaining_percent")}
                for s in (live.filament_slots if live else []) or [] if isinstance(s, dict)
            ],
            "errors": [{"code": e.get("code", ""), "text": e.get("text", "")}
                       for e in (live.errors if live else []) or [] if isinstance(e, dict)],
            "last_report_at": live.last_report_at.isoformat() if live and live.last_report_at else None,
            "last_error": live.last_error if live else "",
        })
    return cards

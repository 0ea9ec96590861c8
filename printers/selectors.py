"""Every non-trivial read of the printers app."""

from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound
from printers.choices import ACTIVE_STATES, JobOutcome, PrinterState
from printers.drivers import registry
from printers.drivers.base import Capability, ConnectionMode
from printers.models import (
    Printer,
    PrinterCommand,
    PrinterJob,
    StateTransition,
    TelemetrySample,
)
from printers.state import live_warnings


def printers_to_poll() -> QuerySet[Printer]:
    """Active printers with credentials whose driver the app polls (PrusaLink)."""
    return Printer.objects.filter(driver__in=registry.names(mode=ConnectionMode.POLL), is_active=True) \
        .exclude(credentials_ciphertext=b"")


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


def printer_live_warnings(*, printer: Printer) -> list[str]:
    """What the printer's reported hardware asks of an operator: a wet AMS, abrasive filament in a
    nozzle that is not hardened, a nozzle other than the one in its settings (printers.state)."""
    live = getattr(printer, "live", None)
    if live is None:
        return []
    return live_warnings(nozzle_type=live.nozzle_type, filament_slots=live.filament_slots, ams_units=live.ams_units,
                         configured_nozzle_mm=printer.nozzle_diameter_mm, nozzle_diameter_mm=live.nozzle_diameter_mm)


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
            "nozzle_type": live.nozzle_type if live else "",
            "nozzle_diameter_mm": live.nozzle_diameter_mm if live else None,
            "ams": [{key: unit.get(key) for key in ("id", "humidity_level", "humidity_percent", "temp_c", "wet")}
                    for unit in (live.ams_units if live else []) or [] if isinstance(unit, dict)],
            "warnings": printer_live_warnings(printer=printer),
            "last_report_at": live.last_report_at.isoformat() if live and live.last_report_at else None,
            "last_error": live.last_error if live else "",
        })
    return cards


# Telemetry columns a chart can draw, in the order they are drawn.
TELEMETRY_FIELDS = ("nozzle_c", "nozzle_target_c", "bed_c", "bed_target_c", "chamber_c", "progress_percent")


def printer_telemetry(*, printer: Printer, since: datetime, max_points: int = 360) -> dict[str, list]:
    """The printer's samples since `since`, oldest first: {"at": [...], "<field>": [...]} per column.

    A long window is thinned to at most `max_points` rows by averaging neighbours, so a 24 h chart
    stays small whatever the sampling interval.
    """
    fields = list(TELEMETRY_FIELDS)
    rows = list(TelemetrySample.objects.filter(printer=printer, at__gte=since).order_by("at")
                .values_list("at", *fields))
    if len(rows) > max_points > 0:
        size = -(-len(rows) // max_points)
        thinned = []
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            averaged = [chunk[len(chunk) // 2][0]]
            for column in range(1, len(fields) + 1):
                values = [row[column] for row in chunk if row[column] is not None]
                averaged.append(sum(values) / len(values) if values else None)
            thinned.append(tuple(averaged))
        rows = thinned
    series = {"at": [row[0] for row in rows]}
    for index, name in enumerate(fields, start=1):
        series[name] = [row[index] for row in rows]
    return series


def printer_command_list(*, printer: Printer | None = None, organization=None) -> QuerySet[PrinterCommand]:
    """Commands, newest first; `organization`: only those it requested through the API."""
    qs = PrinterCommand.objects.select_related("printer").order_by("-created_at", "-id")
    if printer is not None:
        qs = qs.filter(printer=printer)
    if organization is not None:
        qs = qs.filter(organization=organization)
    return qs


def printer_command_get(*, printer_id: int, command_id: int, partner) -> PrinterCommand:
    """A command `partner` requested on this printer, still shared with partners; NotFound otherwise."""
    command = (PrinterCommand.objects.select_related("printer")
               .filter(pk=command_id, printer_id=printer_id, printer__in=printer_list(partner=partner),
                       organization=partner).first())
    if command is None:
        raise NotFound(_("Command %(id)s does not exist.") % {"id": command_id})
    return command


def printers_for_publishing(*, changed_since: datetime | None = None) -> QuerySet[Printer]:
    """Printers with their live state for Home Assistant; `changed_since`: only those updated after it."""
    qs = Printer.objects.select_related("live").order_by("pk")
    if changed_since is not None:
        qs = qs.filter(Q(live__updated_at__gt=changed_since) | Q(updated_at__gt=changed_since))
    return qs


def printer_takes_file(*, printer: Printer, name: str) -> bool:
    """Whether the printer's driver can receive and start a file of this name through the app."""
    driver = registry.find(printer.driver)
    if driver is None or not driver.can(Capability.FILE_UPLOAD) or not driver.can(Capability.START_FILE):
        return False
    return not driver.upload_suffixes or (name or "").lower().endswith(driver.upload_suffixes)


def printer_maps_filament(*, printer: Printer) -> bool:
    """Whether a start of a file on this printer takes a filament slot mapping (Bambu's AMS mapping)."""
    driver = registry.find(printer.driver)
    return driver is not None and driver.can(Capability.FILAMENT_MAPPING)

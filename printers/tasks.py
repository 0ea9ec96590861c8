"""django-q2 entry points of the printers app. Each is safe to run twice (even at the same time)."""

import logging
import time

from django.conf import settings

from printers import selectors, services

logger = logging.getLogger(__name__)


def poll_prusalink_printers() -> str:
    """Poll every active printer whose driver the app polls (PrusaLink) every PRUSALINK_POLL_SECONDS.

    django-q2 schedules run at most once a minute, so one run makes 60 // PRUSALINK_POLL_SECONDS
    rounds (two at the default 30 s), spaced by PRUSALINK_POLL_SECONDS.
    """
    interval = max(1, int(settings.PRUSALINK_POLL_SECONDS))
    rounds = max(1, 60 // interval)
    results = []
    for index in range(rounds):
        started = time.monotonic()
        results.append(_poll_round())
        if index < rounds - 1:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return "; ".join(results)


def _poll_round() -> str:
    """Poll every printer to poll once; one printer's failure does not stop the others."""
    polled = failed = 0
    for printer in selectors.printers_to_poll():
        try:
            services.printer_poll(printer=printer)
            polled += 1
        except Exception:  # noqa: BLE001 - keep polling the rest of the fleet
            failed += 1
            logger.exception("Polling printer %s raised.", printer.pk)
    return f"polled {polled}, errors {failed}"


def poll_prusalink_printer(printer_id: int) -> str:
    printer = selectors.printers_to_poll().filter(pk=printer_id).first()
    if printer is None:
        return "gone or inactive"
    return services.printer_poll(printer=printer).state


def run_printer_command(command_id: int) -> str:
    """Carry out one requested command of a printer the app polls (services.command_carry_out)."""
    command = services.command_carry_out(command_id=command_id)
    return command.status if command is not None else "gone"


def expire_printer_commands() -> str:
    """Expire the commands nobody took or answered in time (a schedule, every minute)."""
    return f"expired {services.commands_expire_unclaimed()} commands"


def purge_telemetry() -> str:
    return f"deleted {services.telemetry_purge()} samples"

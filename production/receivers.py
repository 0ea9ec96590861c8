"""Production follows the apps it builds on: printers.signals job_started / job_finished call its services,
and inventory.signals.stock_changed / printers.signals.printer_changed ask for the queue's feasibility to be
checked again in the background (services.print_jobs_recheck_request: spaced out, never on the spot)."""

import logging

from django.dispatch import receiver

from inventory.signals import stock_changed
from printers.signals import job_finished, job_started, printer_changed

logger = logging.getLogger(__name__)


@receiver(job_started, dispatch_uid="production.printer_job_started")
def on_job_started(sender, job, printer, **kwargs) -> None:
    from production import services

    try:
        services.printer_job_started(printer_job=job)
    except Exception:  # noqa: BLE001 - the printer listener must go on; staff see it in the log
        logger.exception("Production could not take the start of printer job %s.", job.pk)


@receiver(job_finished, dispatch_uid="production.printer_job_finished")
def on_job_finished(sender, job, printer, outcome, **kwargs) -> None:
    from production import services

    try:
        services.printer_job_finished(printer_job=job, outcome=outcome)
    except Exception:  # noqa: BLE001 - the printer listener must go on; staff see it in the log
        logger.exception("Production could not book the end of printer job %s.", job.pk)


@receiver(stock_changed, dispatch_uid="production.stock_changed")
@receiver(printer_changed, dispatch_uid="production.printer_changed")
def on_stock_or_printers_changed(sender, **kwargs) -> None:
    from production import services

    try:
        services.print_jobs_recheck_request()
    except Exception:  # noqa: BLE001 - stock and printers must go on; the next change or a queue change rechecks
        logger.exception("Production could not queue a feasibility check after a change of %s.",
                         getattr(sender, "__name__", sender))

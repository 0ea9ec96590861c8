"""Production follows the printers' word: printers.signals job_started / job_finished call its services."""

import logging

from django.dispatch import receiver

from printers.signals import job_finished, job_started

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

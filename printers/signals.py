"""Signals the printers app sends for other apps (production, inventory) to follow.

Both are sent after the transaction that recorded the change commits, once per change.

- job_started(sender=PrinterJob, job, printer, adopted): a job began (adopted: it was
  already running when the app first saw it).
- job_finished(sender=PrinterJob, job, printer, outcome): a job ended with outcome
  completed / cancelled / failed (printers.choices.JobOutcome).
"""

from django.dispatch import Signal

job_started = Signal()
job_finished = Signal()

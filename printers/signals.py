"""Signals the printers app sends for other apps (production, inventory) to follow.

Both are sent after the transaction that recorded the change commits, once per change.

- job_started(sender=PrinterJob, job, printer, adopted): a job began (adopted: it was
  already running when the app first saw it).
- job_finished(sender=PrinterJob, job, printer, outcome): a job ended with outcome
  completed / cancelled / failed (printers.choices.JobOutcome).
- printer_changed(sender=Printer, printer_id, changes): what the fleet can print changed: a printer
  was added ("added") or its settings edited ("settings"), it came online ("online"), or what it
  reports about its nozzle ("nozzle") or the filaments loaded in it ("filaments": a slot's material,
  colour or RFID tag; not the percent left) changed. Sent from the printer listener too: a receiver
  must return quickly (queue its work) and must not fail.
"""

from django.dispatch import Signal

job_started = Signal()
job_finished = Signal()
printer_changed = Signal()

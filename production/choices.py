from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportStatus(models.TextChoices):
    """A file on a printer on its way into the catalog (downloaded by a background task)."""

    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Downloading")
    SUCCEEDED = "succeeded", _("In the catalog")
    FAILED = "failed", _("Failed")


# A request still waiting for the task or being carried out by it.
IMPORT_PENDING = frozenset({ImportStatus.QUEUED, ImportStatus.RUNNING})


class SlicerUploadStatus(models.TextChoices):
    """A file a slicer sent through the OctoPrint-compatible door (production/octoprint.py)."""

    INBOX = "inbox", _("In the inbox")
    FILED = "filed", _("In the catalog")


class PrintJobStatus(models.TextChoices):
    """A print job on its way from the queue to a printer and back (queued → … → completed)."""

    QUEUED = "queued", _("Queued")
    ASSIGNED = "assigned", _("Assigned")
    SENT = "sent", _("Sent to the printer")
    PRINTING = "printing", _("Printing")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


PRINT_JOB_STATUS_COLORS = {
    PrintJobStatus.QUEUED: "info",
    PrintJobStatus.ASSIGNED: "primary",
    PrintJobStatus.SENT: "primary",
    PrintJobStatus.PRINTING: "warning",
    PrintJobStatus.COMPLETED: "success",
    PrintJobStatus.FAILED: "danger",
    PrintJobStatus.CANCELLED: "default",
}

# Every job that has not reached a printer yet can be cancelled; a failed or cancelled job can be re-queued.
# A printing job goes back to the queue when its plate completed and further copies are still to print
# (production.services.print_job_transition refuses it otherwise).
ALLOWED_TRANSITIONS = {
    PrintJobStatus.QUEUED: {PrintJobStatus.ASSIGNED, PrintJobStatus.CANCELLED},
    PrintJobStatus.ASSIGNED: {PrintJobStatus.SENT, PrintJobStatus.QUEUED, PrintJobStatus.CANCELLED},
    PrintJobStatus.SENT: {PrintJobStatus.PRINTING, PrintJobStatus.FAILED, PrintJobStatus.CANCELLED},
    PrintJobStatus.PRINTING: {PrintJobStatus.COMPLETED, PrintJobStatus.FAILED, PrintJobStatus.CANCELLED,
                              PrintJobStatus.QUEUED},
    PrintJobStatus.COMPLETED: set(),
    PrintJobStatus.FAILED: {PrintJobStatus.QUEUED},
    PrintJobStatus.CANCELLED: {PrintJobStatus.QUEUED},
}

# Jobs waiting for a printer: they hold filament reservations and are checked for feasibility.
WAITING_STATUSES = frozenset({PrintJobStatus.QUEUED})
# Jobs dispatch gave to a printer that have not ended yet (the job "on" its printer).
ON_PRINTER_STATUSES = frozenset({PrintJobStatus.ASSIGNED, PrintJobStatus.SENT, PrintJobStatus.PRINTING})
# Jobs that ended; only failed and cancelled ones may go back into the queue.
ENDED_STATUSES = frozenset({PrintJobStatus.COMPLETED, PrintJobStatus.FAILED, PrintJobStatus.CANCELLED})


class Priority(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low")


# The queue's order: priority first (lower rank first), then the hand-set position, then age.
PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}

PRIORITY_COLORS = {
    Priority.URGENT: "danger",
    Priority.HIGH: "warning",
    Priority.NORMAL: "info",
    Priority.LOW: "default",
}


class Purpose(models.TextChoices):
    """German accounting keeps business and private use apart."""

    BUSINESS = "business", _("Business")
    PRIVATE = "private", _("Private")


class AttemptOutcome(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ATTEMPT_OUTCOME_COLORS = {
    AttemptOutcome.RUNNING: "primary",
    AttemptOutcome.COMPLETED: "success",
    AttemptOutcome.FAILED: "danger",
    AttemptOutcome.CANCELLED: "warning",
}


class SpoolSource(models.TextChoices):
    """How the spool of a slot allocation was chosen."""

    LOADED = "loaded", _("Loaded in the printer")
    RFID = "rfid", _("Read from its RFID tag in the printer")
    MATCHED = "matched", _("Best match in stock")
    CORRECTED = "corrected", _("Corrected by staff")


class EventTheme(models.TextChoices):
    """What a market is about; past events sharing a theme feed the recommendations of the next."""

    CHRISTMAS = "christmas", _("Christmas")
    EASTER = "easter", _("Easter")
    HALLOWEEN = "halloween", _("Halloween")
    SPRING = "spring", _("Spring")
    SUMMER = "summer", _("Summer")
    AUTUMN = "autumn", _("Autumn")
    OTHER = "other", _("Other")


class MarketEventStatus(models.TextChoices):
    """A market event from the first plan to its results (planned → preparing → done)."""

    PLANNED = "planned", _("Planned")
    PREPARING = "preparing", _("Preparing")
    DONE = "done", _("Done")


MARKET_EVENT_STATUS_COLORS = {
    MarketEventStatus.PLANNED: "info",
    MarketEventStatus.PREPARING: "warning",
    MarketEventStatus.DONE: "success",
}

# Preparing can go back to planned (the event was postponed); done is final: its sales are recorded.
MARKET_EVENT_TRANSITIONS = {
    MarketEventStatus.PLANNED: {MarketEventStatus.PREPARING},
    MarketEventStatus.PREPARING: {MarketEventStatus.PLANNED, MarketEventStatus.DONE},
    MarketEventStatus.DONE: set(),
}

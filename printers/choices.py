from django.db import models
from django.utils.translation import gettext_lazy as _


class Driver(models.TextChoices):
    BAMBU = "bambu", _("Bambu Lab (local MQTT)")
    PRUSALINK = "prusalink", _("Prusa (PrusaLink HTTP)")


class AuthMethod(models.TextChoices):
    """How the app proves itself to a PrusaLink printer (Bambu always uses its access code)."""

    DIGEST = "digest", _("HTTP Digest (user maker)")
    API_KEY = "api_key", _("X-Api-Key header")


class PrinterState(models.TextChoices):
    """The unified state of every printer, whatever its brand (printers.md §3)."""

    OFFLINE = "offline", _("Offline")
    IDLE = "idle", _("Idle")
    PREPARING = "preparing", _("Preparing")
    BUSY = "busy", _("Busy")
    PRINTING = "printing", _("Printing")
    PAUSED = "paused", _("Paused")
    NEEDS_ATTENTION = "needs_attention", _("Needs attention")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


PRINTER_STATE_COLORS = {
    PrinterState.OFFLINE: "danger",
    PrinterState.IDLE: "info",
    PrinterState.PREPARING: "warning",
    PrinterState.BUSY: "warning",
    PrinterState.PRINTING: "primary",
    PrinterState.PAUSED: "warning",
    PrinterState.NEEDS_ATTENTION: "danger",
    PrinterState.FINISHED: "success",
    PrinterState.CANCELLED: "warning",
    PrinterState.FAILED: "danger",
}

# A job is alive in these states; the other states have no running job.
ACTIVE_STATES = frozenset({
    PrinterState.PREPARING, PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.NEEDS_ATTENTION,
})
# A job ended in these states; printers keep showing them until the next job (Bambu) or an acknowledgement (Prusa).
TERMINAL_STATES = frozenset({PrinterState.FINISHED, PrinterState.CANCELLED, PrinterState.FAILED})


class JobOutcome(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


JOB_OUTCOME_COLORS = {
    JobOutcome.RUNNING: "primary",
    JobOutcome.COMPLETED: "success",
    JobOutcome.CANCELLED: "warning",
    JobOutcome.FAILED: "danger",
}

# A running job ends with one outcome, once.
ALLOWED_TRANSITIONS = {
    JobOutcome.RUNNING: {JobOutcome.COMPLETED, JobOutcome.CANCELLED, JobOutcome.FAILED},
    JobOutcome.COMPLETED: set(),
    JobOutcome.CANCELLED: set(),
    JobOutcome.FAILED: set(),
}

TERMINAL_STATE_OUTCOME = {
    PrinterState.FINISHED: JobOutcome.COMPLETED,
    PrinterState.CANCELLED: JobOutcome.CANCELLED,
    PrinterState.FAILED: JobOutcome.FAILED,
}


class CommandAction(models.TextChoices):
    PAUSE = "pause", _("Pause")
    RESUME = "resume", _("Resume")
    STOP = "stop", _("Stop")
    LIGHT = "light", _("Light")
    PROJECT_FILE = "project_file", _("Start a file")


class CommandStatus(models.TextChoices):
    """A command to a Bambu printer travels web process → database → run_printers → printer."""

    PENDING = "pending", _("Waiting for the printer listener")
    SENT = "sent", _("Sent, waiting for the printer")
    SUCCEEDED = "succeeded", _("Done")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Not picked up")


COMMAND_STATUS_COLORS = {
    CommandStatus.PENDING: "info",
    CommandStatus.SENT: "primary",
    CommandStatus.SUCCEEDED: "success",
    CommandStatus.FAILED: "danger",
    CommandStatus.EXPIRED: "warning",
}
COMMAND_DONE = frozenset({CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.EXPIRED})


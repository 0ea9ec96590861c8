"""Domain errors of the printers app (all are fablab ApplicationErrors)."""

from fablab.exceptions import ApplicationError, Conflict, InvalidInput


class ReportError(InvalidInput):
    """A printer sent something the app cannot read (bad JSON, bad UTF-8, wrong types)."""

    title = "Unreadable printer report"
    code = "printer-report-invalid"


class PrinterUnreachable(ApplicationError):
    """No answer, a refused or reset connection, a timeout or a 5xx from the printer."""

    status = 503
    title = "Printer unreachable"
    code = "printer-unreachable"


class PrinterAuthError(ApplicationError):
    status = 502
    title = "Printer refused the credentials"
    code = "printer-auth"


class PrinterConflict(Conflict):
    """The printer refused a command in its current state (PrusaLink 409)."""

    code = "printer-conflict"


class CredentialsError(ApplicationError):
    status = 500
    title = "Printer credentials unreadable"
    code = "printer-credentials"


class PrinterCommandError(ApplicationError):
    """A command to a printer was refused, not acknowledged, or had no effect."""

    status = 502
    title = "Printer command failed"
    code = "printer-command"


class PrinterListenerDown(ApplicationError):
    """No run_printers process took the command: Bambu printers are reachable only through it."""

    status = 503
    title = "Printer listener not running"
    code = "printer-listener-down"

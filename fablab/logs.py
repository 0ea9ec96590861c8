"""Keeping API keys out of the logs.

Clients that cannot send headers (Moonraker, OctoPrint-Spoolman) put their key in the URL path
(/spoolman/fl_.../api/v1/...), and every access log line and request warning writes that path. The filter
below rewrites each key in a record to its public prefix (`fl_<prefix>_[redacted]`, the form the admin lists
keys in), so a log still tells which key called, never its secret.
"""

import logging
import re

# A key where it stands in other text (fablab.services.API_KEY_PATTERN), the secret in the second group.
KEY_IN_TEXT = re.compile(r"(fl_[A-Za-z0-9]+_)([A-Za-z0-9]+)")
REDACTED = r"\1[redacted]"

# The web servers' own access and error loggers: they log on these names directly, so a filter on each logger
# covers them without replacing the handlers (and formats) the server configured for itself.
SERVER_LOGGERS = ("django.server", "django.request", "uvicorn.access", "uvicorn.error",
                  "gunicorn.access", "gunicorn.error")


def redact(value):
    """`value` with every API key's secret replaced; anything but text is returned as it is."""
    return KEY_IN_TEXT.sub(REDACTED, value) if isinstance(value, str) else value


class RedactApiKeys(logging.Filter):
    """Rewrites API keys in a record's message and in its arguments (access logs format theirs late)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {name: redact(value) for name, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(value) for value in record.args)
        return True


def redact_server_logs() -> None:
    """Put the filter on the web servers' loggers (once each), whatever handlers they log to."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactApiKeys) for existing in logger.filters):
            logger.addFilter(RedactApiKeys())

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

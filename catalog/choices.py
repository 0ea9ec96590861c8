from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Licence(models.TextChoices):
    PROPRIETARY = "proprietary", _("All rights reserved")
    CC_BY = "cc-by-4.0", "CC BY 4.0"
    CC_BY_SA = "cc-by-sa-4.0", "CC BY-SA 4.0"
    CC_BY_NC = "cc-by-nc-4.0", "CC BY-NC 4.0"
    CC_BY_NC_SA = "cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0"
    CC_BY_ND = "cc-by-nd-4.0", "CC BY-ND 4.0"
    CC0 = "cc0-1.0", "CC0 1.0"
    GPL = "gpl-3.0", "GPL 3.0"
    OTHER = "other", _("Other (see description)")


class FileFormat(models.TextChoices):
    GCODE = "gcode", _("G-code")
    BGCODE = "bgcode", _("Binary G-code")
    THREE_MF = "3mf", _("3MF")
    UFP = "ufp", _("Cura UFP package")
    STL = "stl", _("STL")


class ExtractionStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Reading")
    DONE = "done", pgettext_lazy("metadata status", "Read")
    FAILED = "failed", _("Failed")


EXTRACTION_STATUS_COLORS = {
    ExtractionStatus.PENDING: "info",
    ExtractionStatus.RUNNING: "warning",
    ExtractionStatus.DONE: "success",
    ExtractionStatus.FAILED: "danger",
}

ALLOWED_TRANSITIONS = {
    ExtractionStatus.PENDING: {ExtractionStatus.RUNNING, ExtractionStatus.FAILED},
    ExtractionStatus.RUNNING: {ExtractionStatus.DONE, ExtractionStatus.FAILED},
    # A retry starts over.
    ExtractionStatus.FAILED: {ExtractionStatus.PENDING},
    ExtractionStatus.DONE: {ExtractionStatus.PENDING},
}

from django.db import models
from django.utils.translation import gettext_lazy as _


class ScanStatus(models.TextChoices):
    DRAFT = "draft", _("Collecting photos")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


SCAN_STATUS_COLORS = {
    ScanStatus.DRAFT: "info",
    ScanStatus.QUEUED: "info",
    ScanStatus.RUNNING: "warning",
    ScanStatus.SUCCEEDED: "success",
    ScanStatus.FAILED: "danger",
    ScanStatus.CANCELLED: "danger",
}

ALLOWED_TRANSITIONS = {
    ScanStatus.DRAFT: {ScanStatus.QUEUED, ScanStatus.CANCELLED},
    ScanStatus.QUEUED: {ScanStatus.RUNNING, ScanStatus.CANCELLED},
    ScanStatus.RUNNING: {ScanStatus.SUCCEEDED, ScanStatus.FAILED, ScanStatus.CANCELLED},
    # A retry starts again from the first stage that did not finish.
    ScanStatus.FAILED: {ScanStatus.QUEUED},
    ScanStatus.SUCCEEDED: set(),
    ScanStatus.CANCELLED: set(),
}

class ScaleMethod(models.TextChoices):
    DIMENSION = "dimension", _("Longest side entered")
    MARKERS = "markers", _("Printed marker sheet")
    NONE = "none", _("No scaling")


FINISHED = frozenset({ScanStatus.SUCCEEDED, ScanStatus.FAILED, ScanStatus.CANCELLED})


class Stage(models.TextChoices):
    FEATURES = "features", _("Finding features")
    MATCHING = "matching", _("Matching photos")
    MAPPING = "mapping", _("Placing cameras")
    MESHING = "meshing", _("Building the surface")
    CLEANING = "cleaning", _("Cleaning the mesh")
    SCALING = "scaling", _("Scaling to size")
    EXPORTING = "exporting", _("Writing files")

"""Scan jobs: a customer's photo set and, once reconstructed, the printable mesh."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from fablab.models import OrganizationOwnedModel, TimeStampedModel
from reconstruction.choices import ScaleMethod, ScanStatus, Stage


def photo_path(instance: "ScanPhoto", filename: str) -> str:
    job = instance.job
    return f"scans/org-{job.organization_id}/{job.pk}/photos/{instance.sha256}{instance.extension}"


def output_path(instance: "ScanJob", filename: str) -> str:
    return f"scans/org-{instance.organization_id}/{instance.pk}/result/{filename}"


class ScanJob(OrganizationOwnedModel):
    organization = models.ForeignKey(
        "fablab.Organization", verbose_name=_("organization"), on_delete=models.CASCADE, related_name="scan_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    title = models.CharField(_("title"), max_length=200)
    known_dimension_mm = models.DecimalField(
        _("longest side (mm)"), max_digits=8, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5000)],
        help_text=_("The real length of the object's longest side; the mesh is scaled to it."),
    )
    scale_method = models.CharField(
        _("scale from"), max_length=12, choices=ScaleMethod.choices, default=ScaleMethod.DIMENSION,
        help_text=_("How the mesh gets its true size: the longest side entered, or the printed marker sheet "
                    "photographed under the object (the longest side, when entered, is then the fallback)."),
    )
    status = models.CharField(_("status"), max_length=12, choices=ScanStatus.choices, default=ScanStatus.DRAFT,
                              db_index=True)
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, blank=True)
    progress = models.FloatField(_("progress (%)"), default=0)
    stage_timings = models.JSONField(_("seconds per stage"), default=dict, blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    error = models.TextField(_("what went wrong"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    expires_at = models.DateTimeField(_("files deleted on"), null=True, blank=True)
    purged_at = models.DateTimeField(_("files deleted"), null=True, blank=True)
    language = models.CharField(
        _("language"), max_length=8, blank=True,
        help_text=_("The language the scan was started in; its e-mails are written in it."),
    )
    notified_at = models.DateTimeField(
        _("customer told"), null=True, blank=True,
        help_text=_("When the e-mail that the scan finished or failed was sent (once per ending)."),
    )
    mesh_stl = models.FileField(_("mesh (STL)"), upload_to=output_path, blank=True, max_length=300)
    mesh_3mf = models.FileField(_("mesh (3MF)"), upload_to=output_path, blank=True, max_length=300)
    cad_step = models.FileField(_("CAD solid (STEP)"), upload_to=output_path, blank=True, max_length=300)
    preview = models.ImageField(_("preview"), upload_to=output_path, blank=True, max_length=300)
    point_cloud = models.FileField(_("point cloud (PLY)"), upload_to=output_path, blank=True, max_length=300)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("scan job")
        verbose_name_plural = _("scan jobs")

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        super().clean()
        if self.scale_method == ScaleMethod.DIMENSION and self.known_dimension_mm is None:
            raise ValidationError({"known_dimension_mm": _(
                "Enter the object's longest side, or choose the marker sheet to scale the scan.")})
        if self.scale_method == ScaleMethod.NONE and self.known_dimension_mm is not None:
            raise ValidationError({"scale_method": _(
                "A longest side was entered but scaling is switched off; choose the longest side to use it.")})


class ScanPhoto(TimeStampedModel):
    job = models.ForeignKey(ScanJob, verbose_name=_("scan job"), on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(_("photo"), upload_to=photo_path, max_length=300)
    original_name = models.CharField(_("original name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    extension = models.CharField(max_length=6)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    focal_length_mm = models.FloatField(_("focal length (mm)"), null=True, blank=True)
    focal_length_35mm = models.FloatField(_("35 mm equivalent"), null=True, blank=True)
    camera = models.CharField(_("camera"), max_length=120, blank=True)

    class Meta:
        ordering = ["job", "original_name"]
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        constraints = [models.UniqueConstraint(fields=["job", "sha256"], name="reconstruction_photo_unique_in_job")]

    def __str__(self) -> str:
        return self.original_name

    @property
    def format(self) -> str:
        """The type the content has, whatever its name said: JPEG (HEIC photos are stored as JPEG) or PNG."""
        return {".jpg": "JPEG", ".png": "PNG"}.get(self.extension, self.extension.lstrip(".").upper())

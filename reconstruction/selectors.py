from django.db.models import Count, QuerySet, Sum
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob


def scan_job_list(*, organization) -> QuerySet[ScanJob]:
    return ScanJob.objects.for_organization(organization).annotate(
        photo_count=Count("photos"), photo_bytes=Sum("photos__size_bytes")).order_by("-created_at")


def scan_job_get(*, organization, job_id: int) -> ScanJob:
    job = scan_job_list(organization=organization).filter(pk=job_id).first()
    if job is None:
        raise NotFound(_("No scan with id %(id)s.") % {"id": job_id})
    return job


# What a finished scan offers for download: kind -> (file field, content type).
DOWNLOADS = {"stl": ("mesh_stl", "model/stl"), "3mf": ("mesh_3mf", "model/3mf"), "step": ("cad_step", "model/step"),
             "ply": ("point_cloud", "application/octet-stream"), "png": ("preview", "image/png")}


def scan_job_file(*, job: ScanJob, kind: str):
    """The stored file of `kind` and its content type, or NotFound."""
    if kind not in DOWNLOADS:
        raise NotFound(_("Unknown file kind %(kind)r; use stl, 3mf, step, png or ply.") % {"kind": kind})
    field_name, content_type = DOWNLOADS[kind]
    field = getattr(job, field_name)
    if not field:
        raise NotFound(_("This file is not available."))
    return field, content_type


def reconstruction_kpis() -> list[dict]:
    return [
        {"label": _("Scans queued or running"),
         "value": ScanJob.objects.filter(status__in=[ScanStatus.QUEUED, ScanStatus.RUNNING]).count()},
        {"label": _("Scans finished"), "value": ScanJob.objects.filter(status=ScanStatus.SUCCEEDED).count()},
        {"label": _("Scans failed"), "value": ScanJob.objects.filter(status=ScanStatus.FAILED).count()},
    ]

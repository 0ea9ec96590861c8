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


def scan_job_notice_recipients(*, job: ScanJob) -> list[str]:
    """Who hears that a scan ended: the person who started it, else the organization's owners."""
    from fablab.choices import MembershipRole
    from fablab.models import Membership

    person = job.created_by
    if person is not None and person.is_active and person.email and Membership.objects.filter(
            organization=job.organization_id, user=person).exists():
        return [person.email]
    return list(Membership.objects.filter(organization=job.organization_id, role=MembershipRole.OWNER,
                                          user__is_active=True).exclude(user__email="")
                .order_by("created_at").values_list("user__email", flat=True))

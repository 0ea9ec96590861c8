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


def reconstruction_kpis() -> list[dict]:
    return [
        {"label": _("Scans queued or running"),
         "value": ScanJob.objects.filter(status__in=[ScanStatus.QUEUED, ScanStatus.RUNNING]).count()},
        {"label": _("Scans finished"), "value": ScanJob.objects.filter(status=ScanStatus.SUCCEEDED).count()},
        {"label": _("Scans failed"), "value": ScanJob.objects.filter(status=ScanStatus.FAILED).count()},
    ]

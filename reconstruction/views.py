"""Customer portal pages for scans: create, upload photos, follow progress, download."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fablab.exceptions import ApplicationError, InvalidInput, NotFound
from fablab.files import open_stored
from fablab.views import with_organization
from reconstruction import selectors, services
from reconstruction.choices import ScanStatus
from reconstruction.forms import ScanJobForm
from reconstruction.report_text import photo_tips, report_summary

# The viewer loads meshes up to this size; larger ones are offered for download only.
VIEWER_MAX_BYTES = 100 * 1024 * 1024
PAPERS = ["A4", "Letter"]  # marker sheet sizes offered for download (reconstruction.markers.PAPERS_MM)


def _status(job) -> dict:
    return {
        "status": job.status, "status_label": str(job.get_status_display()), "stage": job.stage,
        "stage_label": str(job.get_stage_display()) if job.stage else "", "progress": round(job.progress, 1),
        "error": job.error, "photos": job.photos.count(),
    }


@with_organization
def scan_list(request, organization, membership) -> HttpResponse:
    form = ScanJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.scan_job_create(
                organization=organization, user=request.user, title=form.cleaned_data["title"],
                known_dimension_mm=form.cleaned_data["known_dimension_mm"],
                scale_method=form.cleaned_data["scale_method"],
            )
        except InvalidInput as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("scans:detail", job.pk)
    return render(request, "reconstruction/scan_list.html", {
        "organization": organization, "jobs": selectors.scan_job_list(organization=organization), "form": form,
        "photo_tips": photo_tips(), "papers": PAPERS,
    }, status=400 if form.errors else 200)


@require_GET
@login_required
def marker_sheet(request) -> HttpResponse:
    """The printable marker sheet (PDF) that gives a scan its true size."""
    from reconstruction import markers  # OpenCV and ReportLab load only when a sheet is asked for

    paper = request.GET.get("paper", "A4")
    try:
        pdf = markers.marker_sheet_pdf(paper=paper)
    except InvalidInput as exc:
        return HttpResponseBadRequest(exc.message, content_type="text/plain; charset=utf-8")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="fablab-marker-sheet-{paper.lower()}.pdf"'
    return response


@with_organization
def scan_detail(request, organization, membership, job_id: int) -> HttpResponse:
    job = selectors.scan_job_get(organization=organization, job_id=job_id)
    stl_bytes = _stored_size(job.mesh_stl) if job.status == ScanStatus.SUCCEEDED and job.mesh_stl else None
    return render(request, "reconstruction/scan_detail.html", {
        "job": job, "status": _status(job), "advice": services.photo_advice(job.photo_count),
        "photos": job.photos.all()[:200], "organization": organization, "photo_tips": photo_tips(),
        "report": report_summary(job), "stl_bytes": stl_bytes, "viewer_max_bytes": VIEWER_MAX_BYTES,
    })


@with_organization
def scan_status(request, organization, membership, job_id: int) -> JsonResponse:
    return JsonResponse(_status(selectors.scan_job_get(organization=organization, job_id=job_id)))


@require_POST
@with_organization
def photo_upload(request, organization, membership, job_id: int) -> JsonResponse:
    """One photo per request, so the page shows each file's progress and outcome."""
    job = selectors.scan_job_get(organization=organization, job_id=job_id)
    upload = request.FILES.get("photo")
    if upload is None:
        return JsonResponse({"error": _("No photo was sent.")}, status=400)
    try:
        photo, created = services.scan_photo_add(job=job, upload=upload)
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    count = job.photos.count()
    return JsonResponse({"created": created, "photos": count, "advice": services.photo_advice(count),
                         "name": photo.original_name, "format": photo.format}, status=201 if created else 200)


def _act_on_scan(request, organization, job_id: int, service, done: str) -> None:
    """Run one service on a scan of the organization and tell the customer it was done."""
    service(job=selectors.scan_job_get(organization=organization, job_id=job_id))
    messages.success(request, done)


@require_POST
@with_organization
def scan_submit(request, organization, membership, job_id: int) -> HttpResponse:
    try:
        _act_on_scan(request, organization, job_id, services.scan_job_submit,
                     _("The scan is queued; this page shows its progress."))
    except NotFound:
        raise
    except ApplicationError as exc:  # too few photos, or the plan's daily or monthly allowance is used up
        messages.error(request, exc.message)
    return redirect("scans:detail", job_id)


@require_POST
@with_organization
def scan_cancel(request, organization, membership, job_id: int) -> HttpResponse:
    _act_on_scan(request, organization, job_id, services.scan_job_cancel, _("The scan is being cancelled."))
    return redirect("scans:detail", job_id)


@require_POST
@with_organization
def scan_delete(request, organization, membership, job_id: int) -> HttpResponse:
    _act_on_scan(request, organization, job_id, services.scan_job_delete, _("The scan and its files were deleted."))
    return redirect("scans:list")


@with_organization
def scan_download(request, organization, membership, job_id: int, kind: str) -> FileResponse:
    job = selectors.scan_job_get(organization=organization, job_id=job_id)
    field, content_type = selectors.scan_job_file(job=job, kind=kind)
    filename = f"{job.title or 'scan'}.{kind}".replace("/", "-")
    return FileResponse(open_stored(field), as_attachment=kind != "png", filename=filename, content_type=content_type)


def _stored_size(field) -> int | None:
    try:
        return field.size
    except (OSError, ValueError):
        return None

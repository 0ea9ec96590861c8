"""Customer portal pages for scans: create, upload photos, follow progress, download."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from fablab.exceptions import ApplicationError, InvalidInput
from fablab.views import with_organization
from reconstruction import selectors, services
from reconstruction.choices import ScanStatus, Stage
from reconstruction.forms import ScanJobForm
from reconstruction.pipeline import STAGES

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
                         "name": photo.original_name}, status=201 if created else 200)


@require_POST
@with_organization
def scan_submit(request, organization, membership, job_id: int) -> HttpResponse:
    services.scan_job_submit(job=selectors.scan_job_get(organization=organization, job_id=job_id))
    messages.success(request, _("The scan is queued; this page shows its progress."))
    return redirect("scans:detail", job_id)


@require_POST
@with_organization
def scan_cancel(request, organization, membership, job_id: int) -> HttpResponse:
    services.scan_job_cancel(job=selectors.scan_job_get(organization=organization, job_id=job_id))
    messages.success(request, _("The scan is being cancelled."))
    return redirect("scans:detail", job_id)


@require_POST
@with_organization
def scan_delete(request, organization, membership, job_id: int) -> HttpResponse:
    services.scan_job_delete(job=selectors.scan_job_get(organization=organization, job_id=job_id))
    messages.success(request, _("The scan and its files were deleted."))
    return redirect("scans:list")


@with_organization
def scan_download(request, organization, membership, job_id: int, kind: str) -> FileResponse:
    job = selectors.scan_job_get(organization=organization, job_id=job_id)
    field, content_type = selectors.scan_job_file(job=job, kind=kind)
    filename = f"{job.title or 'scan'}.{kind}".replace("/", "-")
    return FileResponse(field.open("rb"), as_attachment=kind != "png", filename=filename, content_type=content_type)



# --- Words for the page ------------------------------------------------------------------

STAGE_LABELS = {**dict(Stage.choices), "densify": gettext_lazy("Dense matching")}
NAMES_SHOWN = 8


def _stored_size(field) -> int | None:
    try:
        return field.size
    except (OSError, ValueError):
        return None


def photo_tips() -> list[str]:
    """How to photograph an object for a scan, with the limits the service applies."""
    return [
        _("Take 20 to 50 photos; a scan accepts %(min)s to %(max)s.") % {
            "min": settings.RECONSTRUCTION_MIN_PHOTOS, "max": settings.RECONSTRUCTION_MAX_PHOTOS},
        _("Walk around the object once at its height and once from above; each photo should overlap the "
          "previous one by about two thirds."),
        _("Use even, soft light: no flash, no hard shadows, no direct sun. Keep the object sharp and filling "
          "most of the picture."),
        _("Do not move the object between photos; move around it instead."),
    ]


def _number(value) -> str:
    return number_format(value, force_grouping=True)


def _mm(value) -> str:
    return number_format(round(float(value), 1), decimal_pos=1, force_grouping=True)


def duration(seconds: float) -> str:
    """Seconds as a person says them: "under a second", "42 s", "3 min 5 s", "1 h 12 min"."""
    seconds = round(float(seconds))
    if seconds < 1:
        return _("under a second")
    if seconds < 60:
        return _("%(s)s s") % {"s": seconds}
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": rest} if rest else _("%(m)s min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}


def _names(stored: list[str], originals: dict[str, str]) -> str:
    """Photo names as the customer uploaded them (the pipeline sees them under their content hash)."""
    names = [originals.get(name, name) for name in stored]
    shown = ", ".join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        more = len(names) - NAMES_SHOWN
        shown += " " + ngettext("and %(n)s more", "and %(n)s more", more) % {"n": more}
    return shown


def _photo_sentences(report: dict, originals: dict[str, str]) -> list[str]:
    total, placed = report.get("photos"), report.get("registered_photos")
    sentences = []
    if total is not None and placed is not None:
        if placed >= total:
            sentences.append(ngettext("The one photo was placed.", "All %(total)s photos were placed in 3D.",
                                      total) % {"total": total})
        else:
            sentences.append(ngettext("%(placed)s of %(total)s photo was placed in 3D.",
                                      "%(placed)s of %(total)s photos were placed in 3D.", total)
                             % {"placed": placed, "total": total})
            unplaced = report.get("unplaced_photos") or []
            if unplaced:
                sentences.append(ngettext("Not placed: %(names)s. It did not overlap enough with the others.",
                                          "Not placed: %(names)s. They did not overlap enough with the others.",
                                          len(unplaced)) % {"names": _names(unplaced, originals)})
    elif total is not None:
        sentences.append(ngettext("%(total)s photo was read.", "%(total)s photos were read.", total)
                         % {"total": total})
    poor = report.get("photos_without_detail") or []
    if poor:
        sentences.append(_("Little detail was found in %(names)s (blurred, too dark or plain surfaces).")
                         % {"names": _names(poor, originals)})
    return sentences


def _point_sentences(report: dict) -> list[str]:
    sentences = []
    if report.get("points") is not None:
        sentences.append(ngettext("The placed photos gave %(n)s point on the object's surface.",
                                  "The placed photos gave %(n)s points on the object's surface.", report["points"])
                         % {"n": _number(report["points"])})
    dense = (report.get("densify") or {}).get("points")
    if dense:
        sentences.append(ngettext("Dense matching found %(n)s point more.", "Dense matching found %(n)s points more.",
                                  dense) % {"n": _number(dense)})
    if report.get("meshed_from") == "dense points":
        sentences.append(_("The surface was built from the dense points."))
    elif report.get("meshed_from") == "sparse points":
        sentences.append(_("The surface was built from the first points only, so fine details may be missing."))
    return sentences


def _scale_sentences(job, report: dict) -> list[str]:
    scale = report.get("scale") or {}
    method = str(scale.get("method", ""))
    sentences = []
    if method == "marker sheet":
        used = scale.get("markers_used") or []
        sentences.append(ngettext(
            "The size comes from the marker sheet: %(markers)s marker was found in %(photos)s photos.",
            "The size comes from the marker sheet: %(markers)s markers were found in %(photos)s photos.", len(used),
        ) % {"markers": len(used), "photos": scale.get("photos_with_markers", "?")})
        if scale.get("spread_percent") is not None:
            spread = float(scale["spread_percent"])
            sentences.append(_("The distances between the markers agree to within %(spread)s %%, so the size is "
                               "%(quality)s.") % {
                "spread": number_format(spread, decimal_pos=2),
                "quality": _("very reliable") if spread < 0.5 else _("reliable") if spread < 2 else
                _("only approximate; check the printout measures 50 mm on its ruler")})
        if scale.get("fit_rms_mm") is not None:
            sentences.append(_("The sheet lay flat to within %(mm)s mm.")
                             % {"mm": number_format(float(scale["fit_rms_mm"]), decimal_pos=2)})
    elif method == "known dimension":
        if scale.get("markers") == "not found":
            sentences.append(_("The marker sheet was not found in the photos, so the longest side you entered "
                               "was used instead."))
        sentences.append(_("The model was scaled so that its longest side measures %(mm)s mm, as you entered.")
                         % {"mm": _mm(scale.get("longest_side_mm", job.known_dimension_mm or 0))})
    elif method:
        sentences.append(_("The model was not scaled, so its size is arbitrary. Enter the longest side or use the "
                           "marker sheet to get a true-size model."))
    size = report.get("size_mm")
    if size and len(size) == 3:
        sentences.append(_("It measures %(x)s × %(y)s × %(z)s mm (width × depth × height).")
                         % {"x": _mm(size[0]), "y": _mm(size[1]), "z": _mm(size[2])})
    return sentences


def _mesh_sentences(report: dict) -> list[str]:
    mesh = report.get("mesh") or {}
    watertight = mesh.get("watertight", report.get("watertight"))
    if watertight is None:
        return []
    if watertight:
        sentence = _("The mesh is closed (watertight) and ready to slice.")
        if mesh.get("volume_mm3"):
            sentence += " " + _("It holds %(cm3)s cm³.") % {
                "cm3": number_format(float(mesh["volume_mm3"]) / 1000, decimal_pos=1, force_grouping=True)}
    else:
        sentence = _("The mesh has small openings; most slicers repair them when importing.")
    if mesh.get("faces"):
        sentence += " " + ngettext("It has %(n)s triangle.", "It has %(n)s triangles.", mesh["faces"]) % {
            "n": _number(mesh["faces"])}
    return [sentence]


def _timing_sentences(job, report: dict) -> list[str]:
    timings = job.stage_timings or report.get("stage_timings") or {}
    timings = {stage: seconds for stage, seconds in timings.items() if isinstance(seconds, (int, float))}
    if not timings:
        return []
    order = [stage for stage, _share in STAGES]  # the database may keep JSON keys in another order
    stages = sorted(timings, key=lambda stage: (order.index(stage) if stage in order else len(order), stage))
    parts = ", ".join(f"{str(STAGE_LABELS.get(stage, stage)).lower()} {duration(timings[stage])}" for stage in stages)
    return [_("The scan took %(total)s: %(parts)s.") % {"total": duration(sum(timings.values())), "parts": parts}]


def report_summary(job) -> list[dict]:
    """The job's report as sentences, one group per topic; empty while there is no report."""
    report = job.report or {}
    if not report:
        return []
    originals = {f"{photo.sha256[:16]}{photo.extension}": photo.original_name for photo in job.photos.all()}
    groups = [
        ("photos", _("Photos"), _photo_sentences(report, originals)),
        ("points", _("Points"), _point_sentences(report)),
        ("scale", _("Size"), _scale_sentences(job, report)),
        ("mesh", _("Mesh"), _mesh_sentences(report)),
        ("timings", _("Time"), _timing_sentences(job, report)),
    ]
    return [{"key": key, "title": title, "text": " ".join(sentences)} for key, title, sentences in groups if sentences]

"""Scans for partners: create a job, upload photos, start it, follow it, download the result."""

from typing import Literal

from django.http import FileResponse, HttpRequest, HttpResponse
from ninja import File, Router, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from fablab.api_auth import tenant, write_key
from fablab.api_openapi import may_answer
from fablab.api_pagination import Pagination
from fablab.files import open_stored
from reconstruction import markers, selectors, services
from reconstruction.schemas import PhotoOut, ScanCreateIn, ScanOut

router = Router(tags=["scans"])

# The paper sizes the marker sheet comes in.
Paper = Literal[tuple(markers.PAPERS_MM)]


@router.get("", response=list[ScanOut], summary="Scans of this organization")
@paginate(Pagination)
def scan_list(request: HttpRequest):
    return selectors.scan_job_list(organization=tenant(request))


@router.post("", response={201: ScanOut}, auth=write_key, summary="Create a scan (then upload its photos)")
def scan_create(request: HttpRequest, payload: ScanCreateIn):
    job = services.scan_job_create(organization=tenant(request), user=None, title=payload.title,
                                   known_dimension_mm=payload.known_dimension_mm, scale_method=payload.scale_method)
    return Status(201, job)


@router.get("/marker-sheet.pdf", summary="The printable marker sheet for scans scaled by markers",
            description="Print at 100 % / actual size; paper is A4 (default) or Letter.")
def marker_sheet(request: HttpRequest, paper: Paper = "A4"):
    response = HttpResponse(markers.marker_sheet_pdf(paper=paper), content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="fablab-marker-sheet.pdf"'
    return response


@router.get("/{scan_id}", response=ScanOut, summary="A scan with its progress and report")
def scan_detail(request: HttpRequest, scan_id: int):
    return selectors.scan_job_get(organization=tenant(request), job_id=scan_id)


@router.post("/{scan_id}/photos", response={200: PhotoOut, 201: PhotoOut}, auth=write_key,
             summary="Upload one photo (JPEG or PNG); the same photo twice is kept once")
def photo_upload(request: HttpRequest, scan_id: int, photo: File[UploadedFile]):
    job = selectors.scan_job_get(organization=tenant(request), job_id=scan_id)
    added, created = services.scan_photo_add(job=job, upload=photo)
    count = job.photos.count()
    return Status(201 if created else 200, {"created": created, "name": added.original_name, "format": added.format,
                                            "photos": count, "advice": services.photo_advice(count)})


@router.post("/{scan_id}/submit", response=ScanOut, auth=write_key, summary="Start the reconstruction")
@may_answer(402)  # the plan's scans of the month are used up (a day's limit answers 429)
def scan_submit(request: HttpRequest, scan_id: int):
    return services.scan_job_submit(job=selectors.scan_job_get(organization=tenant(request), job_id=scan_id))


@router.post("/{scan_id}/cancel", response=ScanOut, auth=write_key, summary="Cancel a scan")
def scan_cancel(request: HttpRequest, scan_id: int):
    return services.scan_job_cancel(job=selectors.scan_job_get(organization=tenant(request), job_id=scan_id))


@router.get("/{scan_id}/download/{kind}", url_name="scan_download", summary="Download stl, 3mf, step, png or ply")
def scan_download(request: HttpRequest, scan_id: int, kind: str):
    job = selectors.scan_job_get(organization=tenant(request), job_id=scan_id)
    field, content_type = selectors.scan_job_file(job=job, kind=kind)
    return FileResponse(open_stored(field), as_attachment=True, filename=f"scan-{job.pk}.{kind}",
                        content_type=content_type)

"""Every write to scan jobs: photos in, job state, cancellation, retention."""

import hashlib
import io
import logging
import warnings
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import Image, ImageStat, UnidentifiedImageError
from pillow_heif import register_heif_opener

from billing import services as billing
from fablab.exceptions import Conflict, InvalidInput
from fablab.files import delete_stored, format_mib
from fablab.states import check_transition
from fablab.validation import validate
from reconstruction.choices import ALLOWED_TRANSITIONS, FINISHED, ScaleMethod, ScanStatus
from reconstruction.models import ScanJob, ScanPhoto

logger = logging.getLogger(__name__)

MB = 1024 * 1024  # the *_MB settings are MiB
MIN_LONG_SIDE = 640
STALLED_GRACE_SECONDS = 600  # a running job's worker gets this long past the limit before it counts as lost
FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "HEIF": ".jpg"}
CONVERTED = {"HEIF"}  # stored as JPEG, which the pipeline reads
JPEG_QUALITY = 92

register_heif_opener()


def scan_job_create(*, organization, user, title: str, known_dimension_mm=None, scale_method=None) -> ScanJob:
    """A new scan collecting photos. Without a scale method, the longest side is used when it is given."""
    if not scale_method:
        scale_method = ScaleMethod.DIMENSION if known_dimension_mm is not None else ScaleMethod.NONE
    job = ScanJob(organization=organization, created_by=user, title=(title or "").strip(),
                  known_dimension_mm=known_dimension_mm, scale_method=scale_method)
    validate(job)
    job.save()
    return job


def _transition(job: ScanJob, status: str) -> None:
    check_transition(ALLOWED_TRANSITIONS, job.status, status, what=_("The status of a scan"))
    job.status = status


def _exif(image: Image.Image) -> dict:
    try:
        exif = image.getexif()
        details = exif.get_ifd(0x8769)
    except Exception:  # unreadable EXIF is common and harmless
        return {}
    focal = details.get(37386)
    focal_35 = details.get(41989)
    camera = " ".join(str(exif.get(tag, "")).strip() for tag in (271, 272)).strip()
    return {
        "focal_length_mm": float(focal) if focal else None,
        "focal_length_35mm": float(focal_35) if focal_35 else None,
        "camera": camera[:120],
    }


def _as_jpeg(image: Image.Image) -> bytes:
    """The decoded photo as a JPEG, with its EXIF (focal length, camera) kept; the pixels are already upright."""
    exif = image.getexif()
    if 0x0112 in exif:
        exif[0x0112] = 1
    buffer = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(buffer, "JPEG", quality=JPEG_QUALITY,
                                                                    exif=exif.tobytes())
    return buffer.getvalue()


def _too_large(name: str, kind: str, width: int, height: int) -> InvalidInput:
    return InvalidInput(
        _("%(name)s is a %(kind)s image of %(w)s×%(h)s pixels (%(mp).1f megapixels); photos may have at most "
          "%(max)s megapixels. Upload a smaller photo.")
        % {"name": name, "kind": kind, "w": width, "h": height, "mp": width * height / 1e6,
           "max": f"{settings.RECONSTRUCTION_MAX_PHOTO_PIXELS / 1e6:g}"})


def _inspect(data: bytes, *, name: str) -> dict:
    """Decode the photo completely; refuse what the pipeline could not use.

    The type and the size come from the header, before any pixel is decoded: a decoded photo takes
    3 bytes per pixel, so RECONSTRUCTION_MAX_PHOTO_PIXELS bounds the memory one upload can take.
    The content decides the type, whatever the name says. HEIC/HEIF photos (phones) come back
    converted to JPEG under "data".
    """
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning starts at 89 MP; the limit below decides, and says why.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind, (width, height) = probe.format, probe.size
                if kind not in FORMATS:
                    raise InvalidInput(_("%(name)s is not a JPEG or PNG photo (it is %(kind)s); upload JPEG or PNG, "
                                         "or HEIC from a phone.") % {"name": name, "kind": kind or "?"})
                if width * height > settings.RECONSTRUCTION_MAX_PHOTO_PIXELS:
                    raise _too_large(name, kind, width, height)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                converted = _as_jpeg(image) if kind in CONVERTED else None
                details = _exif(image)
                image.thumbnail((256, 256))  # in place: no second full-size copy to measure the contrast
                spread = ImageStat.Stat(image.convert("L")).stddev[0]
    except Image.DecompressionBombError:  # beyond Pillow's hard limit: refused while reading the header
        raise InvalidInput(_("%(name)s has far more than %(max)s megapixels; upload a smaller photo.")
                           % {"name": name, "max": f"{settings.RECONSTRUCTION_MAX_PHOTO_PIXELS / 1e6:g}"}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(_("%(name)s is not a photo that can be read (damaged or not an image).")
                           % {"name": name}) from None
    if max(width, height) < MIN_LONG_SIDE:
        raise InvalidInput(_("%(name)s is only %(w)s×%(h)s pixels; photos need at least %(min)s pixels on "
                             "their long side.") % {"name": name, "w": width, "h": height, "min": MIN_LONG_SIDE})
    if spread < 2.0:
        raise InvalidInput(_("%(name)s is blank (one flat colour); check the lens cap and the exposure.")
                           % {"name": name})
    return {"format": kind, "width": width, "height": height, "data": converted, **details}


@transaction.atomic
def scan_photo_add(*, job: ScanJob, upload) -> tuple[ScanPhoto, bool]:
    """Add one photo to a job that is still collecting photos.

    Returns the photo and whether it was new; the same photo twice is kept once.
    A refused photo leaves nothing stored.
    """
    job = ScanJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ScanStatus.DRAFT:
        raise Conflict(_("Photos can only be added before the scan starts."))
    name = (getattr(upload, "name", "") or "photo").rsplit("/", 1)[-1][:255]
    size = upload.size
    if size > settings.RECONSTRUCTION_MAX_PHOTO_MB * MB:
        raise InvalidInput(_("%(name)s is %(size)s; photos may have at most %(max)s.")
                           % {"name": name, "size": format_mib(size, up=True),
                              "max": format_mib(settings.RECONSTRUCTION_MAX_PHOTO_MB * MB)})
    upload.seek(0)
    data = upload.read()
    sha256 = hashlib.sha256(data).hexdigest()
    existing = job.photos.filter(sha256=sha256).first()
    if existing is not None:
        return existing, False
    if job.photos.count() >= settings.RECONSTRUCTION_MAX_PHOTOS:
        raise InvalidInput(_("A scan takes at most %(max)s photos.") % {"max": settings.RECONSTRUCTION_MAX_PHOTOS})
    total = sum(job.photos.values_list("size_bytes", flat=True)) + size
    if total > settings.RECONSTRUCTION_MAX_JOB_MB * MB:
        raise InvalidInput(_("The photos of one scan may have at most %(max)s together.")
                           % {"max": format_mib(settings.RECONSTRUCTION_MAX_JOB_MB * MB)})
    facts = _inspect(data, name=name)
    stored = facts["data"] or data
    photo = ScanPhoto(job=job, original_name=name, sha256=sha256, extension=FORMATS[facts["format"]],
                      size_bytes=len(stored), width=facts["width"], height=facts["height"],
                      focal_length_mm=facts.get("focal_length_mm"), focal_length_35mm=facts.get("focal_length_35mm"),
                      camera=facts.get("camera", ""))
    photo.image.save(f"{sha256}{photo.extension}", ContentFile(stored), save=False)
    try:
        photo.save()
    except Exception:
        delete_stored(photo.image.storage, photo.image.name)
        raise
    return photo, True


def photo_advice(count: int) -> str:
    if count < settings.RECONSTRUCTION_MIN_PHOTOS:
        missing = settings.RECONSTRUCTION_MIN_PHOTOS - count
        return ngettext("Add at least %(n)s more photo: a scan needs %(min)s or more.",
                        "Add at least %(n)s more photos: a scan needs %(min)s or more.", missing) % {
            "n": missing, "min": settings.RECONSTRUCTION_MIN_PHOTOS}
    if count < 20:
        return _("%(n)s photos can work, but 20 to 50 give far better results: walk around the object once "
                 "at its height and once from above, each photo overlapping the last by about two thirds.") % {
            "n": count}
    if count > 50:
        return _("More than 50 photos take longer without making the model better.")
    return _("A good number of photos.")


@transaction.atomic
def scan_job_submit(*, job: ScanJob) -> ScanJob:
    job = ScanJob.objects.select_for_update().get(pk=job.pk)
    count = job.photos.count()
    if count < settings.RECONSTRUCTION_MIN_PHOTOS:
        raise InvalidInput(photo_advice(count))
    return _queue(job)


def usage_key(job: ScanJob, attempt: int) -> str:
    """The key of the scan unit one run of a job uses: a retried submit counts once, a retry after a refund again."""
    return f"scan-{job.pk}-run-{attempt}"


def _refund(job: ScanJob, *, attempt: int) -> None:
    """Give back the unit of a run that produced nothing (failed, or cancelled before it started)."""
    billing.usage_refund(organization=job.organization, feature=billing.SCANS, key=usage_key(job, attempt))


def _queue(job: ScanJob) -> ScanJob:
    """Move a locked job to the queue; the long task cluster gets it once the transaction commits.

    The run's scan unit is used in the same transaction: a refusal (daily limit 429, allowance used up 402)
    leaves the job as it was.
    """
    _transition(job, ScanStatus.QUEUED)
    billing.usage_consume(organization=job.organization, feature=billing.SCANS,
                          key=usage_key(job, job.attempts + 1))
    job.error = ""
    job.language = _active_language()
    job.save(update_fields=["status", "error", "language", "updated_at"])
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _active_language() -> str:
    """The language of the request that starts the scan (the portal's or the API's), when the site offers it."""
    from django.utils import translation

    language = (translation.get_language() or "").split("-")[0]
    return language if language in dict(settings.LANGUAGES) else ""


def _enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("reconstruction.tasks.run_scan_job", job_id, cluster=settings.LONG_CLUSTER,
               task_name=f"scan job {job_id}", timeout=settings.LONG_TASK_TIMEOUT_SECONDS)


@transaction.atomic
def scan_job_retry(*, job: ScanJob) -> ScanJob:
    return _queue(ScanJob.objects.select_for_update().get(pk=job.pk))


@transaction.atomic
def scan_job_cancel(*, job: ScanJob) -> ScanJob:
    """A job that has not started is cancelled at once; a running one stops at its next checkpoint."""
    job = ScanJob.objects.select_for_update().get(pk=job.pk)
    if job.status in FINISHED:
        raise Conflict(_("This scan has already ended."))
    if job.status == ScanStatus.RUNNING:
        job.cancel_requested_at = timezone.now()
        job.save(update_fields=["cancel_requested_at", "updated_at"])
        return job
    was_queued = job.status == ScanStatus.QUEUED
    _transition(job, ScanStatus.CANCELLED)
    _finish(job)
    job.save()
    if was_queued:
        _refund(job, attempt=job.attempts + 1)
    return job


def _finish(job: ScanJob) -> None:
    job.finished_at = timezone.now()
    job.expires_at = job.finished_at + timedelta(days=settings.RECONSTRUCTION_RETENTION_DAYS)


def _delete_files(job: ScanJob) -> None:
    for photo in job.photos.all():
        if photo.image:
            photo.image.storage.delete(photo.image.name)
    for field in (job.mesh_stl, job.mesh_3mf, job.cad_step, job.preview, job.point_cloud):
        if field:
            field.storage.delete(field.name)


@transaction.atomic
def scan_job_delete(*, job: ScanJob) -> None:
    job = ScanJob.objects.select_for_update().get(pk=job.pk)
    if job.status == ScanStatus.RUNNING:
        raise Conflict(_("Cancel the scan before deleting it."))
    files = [p.image.name for p in job.photos.all()] + [
        f.name for f in (job.mesh_stl, job.mesh_3mf, job.cad_step, job.preview, job.point_cloud) if f]
    storage = ScanPhoto._meta.get_field("image").storage
    job.delete()
    transaction.on_commit(lambda: [storage.delete(name) for name in files])


def scan_jobs_purge_expired(*, now=None) -> int:
    """Delete the photos and results of jobs whose retention has run out; the job row stays as a record."""
    now = now or timezone.now()
    purged = 0
    for job in ScanJob.objects.filter(expires_at__lte=now, purged_at__isnull=True):
        with transaction.atomic():
            locked = ScanJob.objects.select_for_update().get(pk=job.pk)
            _delete_files(locked)
            locked.photos.all().delete()
            for field in ("mesh_stl", "mesh_3mf", "cad_step", "preview", "point_cloud"):
                setattr(locked, field, "")
            locked.purged_at = now
            locked.save()
        import shutil

        shutil.rmtree(work_dir(job), ignore_errors=True)
        purged += 1
    return purged


# --- Running a job (the long-job cluster) ---------------------------------------------


def work_dir(job: ScanJob):
    return settings.RECONSTRUCTION_WORK_DIR / f"job-{job.pk}"


def _claim(job_id: int) -> ScanJob | None:
    with transaction.atomic():
        job = ScanJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ScanStatus.QUEUED:
            return None  # already taken, finished or cancelled: running twice changes nothing
        if job.cancel_requested_at is not None:
            _transition(job, ScanStatus.CANCELLED)
            _finish(job)
            job.save()
            _refund(job, attempt=job.attempts + 1)
            return None
        _transition(job, ScanStatus.RUNNING)
        job.started_at = timezone.now()
        job.attempts += 1
        job.save()
        return job


def _photos_on_disk(job: ScanJob, folder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for photo in job.photos.all():
        target = folder / f"{photo.sha256[:16]}{photo.extension}"
        if not target.exists():
            with photo.image.open("rb") as source, open(target, "wb") as handle:
                for chunk in source.chunks():
                    handle.write(chunk)


def scan_job_run(*, job_id: int) -> str:
    """Run a queued job's pipeline; returns the job's final status."""
    import shutil
    import time

    from reconstruction.pipeline import Cancelled, Context, ScanFailed, run

    job = _claim(job_id)
    if job is None:
        job = ScanJob.objects.filter(pk=job_id).first()
        return job.status if job else "gone"
    folder = work_dir(job)
    state = {"saved": 0.0, "checked": 0.0, "stage": ""}
    limit = settings.RECONSTRUCTION_TIME_LIMIT_SECONDS
    deadline = time.monotonic() + limit

    def on_progress(stage: str, percent: float) -> None:
        now = time.monotonic()
        if stage != state["stage"] or now - state["saved"] > 0.5:
            ScanJob.objects.filter(pk=job.pk).update(stage=stage, progress=round(percent, 1))
            state.update(saved=now, stage=stage)

    def is_cancelled() -> bool:
        now = time.monotonic()
        if now > deadline:
            raise ScanFailed(_time_limit_message(limit))
        if now - state["checked"] < 1.0:
            return False
        state["checked"] = now
        return ScanJob.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists()

    context = Context(photos_dir=folder / "photos", work_dir=folder / "stages",
                      known_dimension_mm=float(job.known_dimension_mm) if job.known_dimension_mm else None,
                      scale_method=job.scale_method, step=True,
                      on_progress=on_progress, is_cancelled=is_cancelled)
    try:
        _photos_on_disk(job, context.photos_dir)
        report = run(context)
    except Cancelled:
        _end(job, ScanStatus.CANCELLED, report=context.report)
        shutil.rmtree(folder, ignore_errors=True)
    except ScanFailed as exc:
        _end(job, ScanStatus.FAILED, report=context.report, error=exc.message)  # work kept: a retry resumes
    except Exception:
        logger.exception("scan job %s stopped with an internal error", job.pk)
        _end(job, ScanStatus.FAILED, report=context.report,
             error=_("An internal error stopped the scan. It has been logged; retry later or contact us."))
    else:
        _store_results(job, context.work_dir / "out", report)
        shutil.rmtree(folder, ignore_errors=True)
    return ScanJob.objects.get(pk=job.pk).status


def _time_limit_message(limit_seconds: int) -> str:
    return _(
        "The scan took longer than the limit of %(minutes)s minutes and was stopped. Upload fewer photos "
        "(30 to 50 are enough for most objects) or smaller ones, then retry."
    ) % {"minutes": max(1, round(limit_seconds / 60))}


def scan_jobs_fail_stalled(*, now=None) -> int:
    """Fail jobs still marked running well past the time limit: their worker was stopped or lost.

    A job checks its own limit between steps; this catches the jobs whose process never got there.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RECONSTRUCTION_TIME_LIMIT_SECONDS + STALLED_GRACE_SECONDS)
    failed = 0
    for job_id in ScanJob.objects.filter(status=ScanStatus.RUNNING, started_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            job = ScanJob.objects.select_for_update().get(pk=job_id)
            if job.status != ScanStatus.RUNNING or job.started_at >= cutoff:
                continue
            _transition(job, ScanStatus.FAILED)
            job.error = _time_limit_message(settings.RECONSTRUCTION_TIME_LIMIT_SECONDS)
            _finish(job)
            job.save()
            _refund(job, attempt=job.attempts)
            transaction.on_commit(lambda job_id=job_id: _enqueue_notice(job_id))
        logger.warning("scan job %s was still running past its time limit; marked failed", job_id)
        failed += 1
    return failed


def _end(job: ScanJob, status: str, *, report: dict, error: str = "") -> None:
    with transaction.atomic():
        locked = ScanJob.objects.select_for_update().get(pk=job.pk)
        _transition(locked, status)
        locked.report, locked.error = report, error
        locked.stage_timings = report.get("stage_timings", {})
        _finish(locked)
        locked.save()
        if status == ScanStatus.FAILED:  # a failed scan stores no result: its unit is given back
            _refund(locked, attempt=locked.attempts)
            transaction.on_commit(lambda: _enqueue_notice(job.pk))


def _store_results(job: ScanJob, out, report: dict) -> None:
    stored = []
    try:
        with transaction.atomic():
            locked = ScanJob.objects.select_for_update().get(pk=job.pk)
            for field, name in (("mesh_stl", "mesh.stl"), ("mesh_3mf", "mesh.3mf"), ("preview", "preview.png"),
                                ("point_cloud", "points.ply"), ("cad_step", "model.step")):
                if name == "model.step" and not (out / name).exists():
                    continue  # the report says why no STEP was made
                with open(out / name, "rb") as handle:
                    getattr(locked, field).save(name, ContentFile(handle.read()), save=False)
                stored.append(getattr(locked, field).name)
            _transition(locked, ScanStatus.SUCCEEDED)
            locked.report = report
            locked.stage_timings = report.get("stage_timings", {})
            locked.progress, locked.error = 100.0, ""
            _finish(locked)
            locked.save()
            transaction.on_commit(lambda: _enqueue_notice(job.pk))
    except BaseException:
        storage = ScanJob._meta.get_field("mesh_stl").storage
        for name in stored:
            delete_stored(storage, name)
        raise


# --- Telling the customer ------------------------------------------------------------------


def _enqueue_notice(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("reconstruction.tasks.send_scan_notice", job_id, task_name=f"scan notice {job_id}")


NOTICE_TEMPLATES = {ScanStatus.SUCCEEDED: "scan_succeeded", ScanStatus.FAILED: "scan_failed"}


@transaction.atomic
def scan_job_notify(*, job_id: int) -> bool:
    """E-mail the person who started the scan (else the organization's owners) that it finished or failed.

    Once per ending: the job remembers when it told, so a task that runs twice sends
    one e-mail, while a retried scan that ends again is told again. In the language the
    scan was started in (the project keeps none per person or organization), else the
    site's, from templates/reconstruction/email/<language>/. Returns whether an e-mail
    was sent.
    """
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils import translation

    from reconstruction import selectors

    job = (ScanJob.objects.select_for_update(of=("self",)).select_related("organization", "created_by")
           .filter(pk=job_id).first())
    if job is None or job.status not in NOTICE_TEMPLATES or job.finished_at is None:
        return False
    if job.notified_at is not None and job.notified_at >= job.finished_at:
        return False
    recipients = selectors.scan_job_notice_recipients(job=job)
    if not recipients:
        logger.warning("scan job %s: nobody with an e-mail address to tell that it ended", job.pk)
        return False
    language = job.language if job.language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
    template = NOTICE_TEMPLATES[job.status]
    context = {"job": job, "organization": job.organization, "error": job.error,
               "size_mm": job.report.get("size_mm"), "photos": job.report.get("registered_photos"),
               "photos_total": job.report.get("photos"), "support": job.report.get("support_removed"),
               "scan_url": settings.PORTAL_BASE_URL + reverse("scans:detail", args=[job.pk])}

    def render(part: str) -> str:
        return render_to_string([f"reconstruction/email/{language}/{template}_{part}",
                                 f"reconstruction/email/en/{template}_{part}"], context)

    with translation.override(language):
        subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(render("subject.txt").split())
        mail = EmailMultiAlternatives(subject, render("message.txt"), settings.DEFAULT_FROM_EMAIL, recipients)
        mail.attach_alternative(render("message.html"), "text/html")
    mail.send()
    job.notified_at = timezone.now()
    job.save(update_fields=["notified_at", "updated_at"])
    return True


def scan_job_add_to_catalog(*, job: ScanJob, by=None):
    """Make a catalog model from a finished scan: one variant whose first version is the scan's STL."""
    from django.core.files import File

    from catalog import services as catalog

    if job.status != ScanStatus.SUCCEEDED or not job.mesh_stl:
        raise Conflict(_("Only a finished scan with its mesh can be added to the catalog."))
    with transaction.atomic():
        model = catalog.model_create(
            name=job.title, created_by=by,
            description=_("From photo scan %(id)s (%(n)s photos).") % {"id": job.pk, "n": job.photos.count()},
        )
        variant = catalog.variant_create(model=model, name=_("Scanned"), sku=f"SCAN-{job.pk}")
        with job.mesh_stl.open("rb") as handle:
            catalog.variant_upload_sliced_file(variant=variant, upload=File(handle, name=f"scan-{job.pk}.stl"),
                                               change_note=_("Mesh from photo scan %(id)s") % {"id": job.pk},
                                               uploaded_by=by)
    return model

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fablab.exceptions import Conflict, InvalidInput
from reconstruction import services
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob, ScanPhoto
from reconstruction.tests.factories import photo, stored

pytestmark = pytest.mark.django_db


class TestPhotos:
    def test_a_photo_is_checked_stored_and_read(self, job):
        added, created = services.scan_photo_add(job=job, upload=photo("a.jpg", focal_mm=55.0))
        assert created and (added.width, added.height, added.extension) == (800, 600, ".jpg")
        assert added.focal_length_mm == 55.0 and added.camera == "Canon EOS REBEL T3"
        assert added.image.name.startswith(f"scans/org-{job.organization_id}/{job.pk}/photos/")

    def test_the_same_photo_twice_is_kept_once(self, job):
        services.scan_photo_add(job=job, upload=photo("a.jpg"))
        again, created = services.scan_photo_add(job=job, upload=photo("copy.jpg"))
        assert not created and again.original_name == "a.jpg" and job.photos.count() == 1

    @pytest.mark.parametrize("upload,message", [
        (SimpleUploadedFile("x.jpg", b"not an image at all"), "can be read"),
        (SimpleUploadedFile("x.jpg", b""), "can be read"),
        (photo("tiny.jpg", size=(320, 240)), "at least 640 pixels"),
        (photo("black.jpg", blank=True), "blank"),
        (photo("x.gif", fmt="GIF"), "upload JPEG or PNG"),
    ])
    def test_bad_photos_are_refused_and_nothing_is_stored(self, job, upload, message):
        with pytest.raises(InvalidInput, match=message):
            services.scan_photo_add(job=job, upload=upload)
        assert not ScanPhoto.objects.exists() and stored() == []

    def test_truncated_jpeg(self, job):
        data = photo("a.jpg").read()
        with pytest.raises(InvalidInput, match="can be read"):
            services.scan_photo_add(job=job, upload=SimpleUploadedFile("cut.jpg", data[: len(data) // 2]))

    def test_decompression_bomb(self, job, settings):
        settings.RECONSTRUCTION_MAX_PHOTO_PIXELS = 100_000
        with pytest.raises(InvalidInput, match="megapixels"):
            services.scan_photo_add(job=job, upload=photo("big.jpg", size=(1000, 800)))

    def test_the_pixel_limit_is_checked_from_the_header_and_names_the_true_type(self, job, settings, monkeypatch):
        """A PNG named .jpg with more pixels than the limit is refused before one pixel is decoded."""
        from PIL import ImageFile

        settings.RECONSTRUCTION_MAX_PHOTO_PIXELS = 1_000_000

        def no_decoding(image):
            raise AssertionError("the photo was decoded before its size was checked")

        monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
        with pytest.raises(InvalidInput) as refused:
            services.scan_photo_add(job=job, upload=photo("big.jpg", size=(1300, 1000), fmt="PNG"))
        assert refused.value.message == ("big.jpg is a PNG image of 1300×1000 pixels (1.3 megapixels); photos may "
                                         "have at most 1 megapixels. Upload a smaller photo.")
        assert not ScanPhoto.objects.exists() and stored() == []

    def test_a_png_named_jpg_is_kept_as_what_it_is(self, job):
        added, created = services.scan_photo_add(job=job, upload=photo("shot.jpg", fmt="PNG"))
        assert created and added.extension == ".png" and added.format == "PNG"
        assert added.image.name.endswith(".png") and added.original_name == "shot.jpg"

    def test_size_limits(self, job, settings):
        settings.RECONSTRUCTION_MAX_PHOTO_MB = 0
        with pytest.raises(InvalidInput, match="at most 0 MiB"):
            services.scan_photo_add(job=job, upload=photo())

    def test_count_limit(self, job, settings):
        settings.RECONSTRUCTION_MAX_PHOTOS = 2
        for n in range(2):
            services.scan_photo_add(job=job, upload=photo(f"{n}.jpg", seed=n))
        with pytest.raises(InvalidInput, match="at most 2 photos"):
            services.scan_photo_add(job=job, upload=photo("3.jpg", seed=3))


class TestLifecycle:
    def test_needs_eight_photos_then_queues_on_the_long_cluster(self, job, settings,
                                                               django_capture_on_commit_callbacks, monkeypatch):
        queued = []
        monkeypatch.setattr(services, "_enqueue", queued.append)
        for n in range(7):
            services.scan_photo_add(job=job, upload=photo(f"{n}.jpg", seed=n))
        with pytest.raises(InvalidInput, match="at least 1 more photo"):
            services.scan_job_submit(job=job)
        services.scan_photo_add(job=job, upload=photo("7.jpg", seed=7))
        with django_capture_on_commit_callbacks(execute=True):
            services.scan_job_submit(job=job)
        assert ScanJob.objects.get(pk=job.pk).status == ScanStatus.QUEUED and queued == [job.pk]
        with pytest.raises(Conflict, match="before the scan starts"):
            services.scan_photo_add(job=job, upload=photo("8.jpg", seed=8))

    def test_a_failed_scan_is_queued_again_with_its_error_cleared(self, job, django_capture_on_commit_callbacks,
                                                                  monkeypatch):
        queued = []
        monkeypatch.setattr(services, "_enqueue", queued.append)
        ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.SUCCEEDED)
        with pytest.raises(Conflict):
            services.scan_job_retry(job=job)  # a finished scan stays finished
        ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.FAILED, error="disk full")
        with django_capture_on_commit_callbacks(execute=True):
            services.scan_job_retry(job=job)
        job.refresh_from_db()
        assert (job.status, job.error, queued) == (ScanStatus.QUEUED, "", [job.pk])

    def test_advice(self):
        assert "20 to 50" in services.photo_advice(12)
        assert "More than 50" in services.photo_advice(80)

    def test_cancel_before_and_while_running(self, job):
        services.scan_job_cancel(job=job)
        job.refresh_from_db()
        assert job.status == ScanStatus.CANCELLED and job.expires_at is not None
        with pytest.raises(Conflict, match="already ended"):
            services.scan_job_cancel(job=job)
        running = ScanJob.objects.create(organization=job.organization, title="r", status=ScanStatus.RUNNING)
        services.scan_job_cancel(job=running)
        running.refresh_from_db()
        assert running.status == ScanStatus.RUNNING and running.cancel_requested_at is not None

    def test_a_claimed_job_is_not_run_twice(self, job):
        assert services.scan_job_run(job_id=job.pk) == ScanStatus.DRAFT  # not queued: nothing happens
        assert services.scan_job_run(job_id=999999) == "gone"

    def test_retention_deletes_files_and_keeps_the_record(self, job):
        services.scan_photo_add(job=job, upload=photo())
        services.scan_job_cancel(job=job)
        assert services.scan_jobs_purge_expired() == 0
        ScanJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert services.scan_jobs_purge_expired() == 1
        job.refresh_from_db()
        assert job.purged_at is not None and not job.photos.exists() and stored() == []
        assert services.scan_jobs_purge_expired() == 0

    def test_delete(self, job, django_capture_on_commit_callbacks):
        services.scan_photo_add(job=job, upload=photo())
        with django_capture_on_commit_callbacks(execute=True):
            services.scan_job_delete(job=job)
        assert not ScanJob.objects.exists() and stored() == []


def test_point_normals_point_away_from_the_object_towards_the_cameras():
    import numpy as np

    from reconstruction.pipeline.meshing import oriented_normals

    points = np.random.default_rng(0).normal(size=(2000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)  # a sphere seen from outside
    normals = oriented_normals(points, points * 3)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1)
    assert (np.einsum("ij,ij->i", normals, points) > 0.9).all()


class TestTimeLimit:
    def test_a_scan_past_its_time_limit_stops_with_advice(self, job, settings, monkeypatch):
        from reconstruction import pipeline

        services.scan_photo_add(job=job, upload=photo())
        ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.QUEUED)
        settings.RECONSTRUCTION_TIME_LIMIT_SECONDS = 0
        reached = []

        def slow_pipeline(context):
            reached.append("started")
            context.checkpoint(0.5)  # the first check after the limit stops the scan
            reached.append("went on")

        monkeypatch.setattr(pipeline, "run", slow_pipeline)
        assert services.scan_job_run(job_id=job.pk) == ScanStatus.FAILED
        job.refresh_from_db()
        assert reached == ["started"]
        assert "longer than the limit" in job.error and "fewer photos" in job.error
        assert job.finished_at is not None and job.expires_at is not None

    def test_a_job_whose_worker_was_lost_is_failed_after_the_limit(self, job, settings):
        settings.RECONSTRUCTION_TIME_LIMIT_SECONDS = 3600
        now = timezone.now()
        lost = ScanJob.objects.create(organization=job.organization, title="lost", status=ScanStatus.RUNNING,
                                      started_at=now - timedelta(seconds=3600 + services.STALLED_GRACE_SECONDS + 1))
        busy = ScanJob.objects.create(organization=job.organization, title="busy", status=ScanStatus.RUNNING,
                                      started_at=now - timedelta(seconds=3600))
        assert services.scan_jobs_fail_stalled(now=now) == 1
        lost.refresh_from_db()
        busy.refresh_from_db()
        assert lost.status == ScanStatus.FAILED and "longer than the limit of 60 minutes" in lost.error
        assert busy.status == ScanStatus.RUNNING
        assert services.scan_jobs_fail_stalled(now=now) == 0

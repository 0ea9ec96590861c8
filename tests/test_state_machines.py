"""Every state machine refuses an illegal move the same way: IllegalTransition, a 409 conflict.

One check per app that uses `fablab.states.check_transition`, through the API where a client can
ask for the move, otherwise at the service that guards it.
"""

import pytest
from django.utils import timezone

from fablab.exceptions import IllegalTransition
from fablab.tests.helpers import assert_problem

pytestmark = pytest.mark.django_db


def test_submitting_a_queued_scan_again_answers_409(api, settings, monkeypatch):
    from reconstruction import services
    from reconstruction.models import ScanJob
    from reconstruction.tests.factories import photo

    settings.RECONSTRUCTION_MIN_PHOTOS = 1
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    scan_id = api.post("/api/v1/scans", {"title": "Bracket"}, content_type="application/json").json()["id"]
    assert api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": photo("1.jpg")}).status_code == 201
    assert api.post(f"/api/v1/scans/{scan_id}/submit").json()["status"] == "queued"

    body = assert_problem(api.post(f"/api/v1/scans/{scan_id}/submit"), 409,
                          detail_contains="The status of a scan cannot change from Queued to Queued.")
    assert body["type"] == "urn:fablab:problem:conflict"
    assert ScanJob.objects.get(pk=scan_id).status == "queued"


def test_reading_a_sliced_file_another_worker_is_reading_is_refused(fake_reader, settings, monkeypatch):
    from catalog import services
    from catalog.choices import ExtractionStatus
    from catalog.models import SlicedFile
    from catalog.tests.factories import VariantFactory, gcode_upload

    settings.CATALOG_SYNC_READ_BYTES = 0  # read in the background
    monkeypatch.setattr(services, "_enqueue_extraction", lambda pk: None)
    sliced = services.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload()).sliced_file
    SlicedFile.objects.filter(pk=sliced.pk).update(status=ExtractionStatus.RUNNING)

    with pytest.raises(IllegalTransition, match="The metadata status cannot change from Reading to Reading."):
        services.sliced_file_extract(sliced_file=sliced)
    assert SlicedFile.objects.get(pk=sliced.pk).status == ExtractionStatus.RUNNING
    assert fake_reader.calls == 0


def test_an_ended_print_job_cannot_end_again():
    from printers import services
    from printers.choices import JobOutcome
    from printers.models import PrinterJob

    job = PrinterJob(outcome=JobOutcome.COMPLETED, started_at=timezone.now())
    with pytest.raises(IllegalTransition, match="The outcome of a print job cannot change from Completed to Failed."):
        services._job_transition(job, JobOutcome.FAILED)
    assert job.outcome == JobOutcome.COMPLETED

"""The pipeline end to end on real photos (16 views of the Middlebury temple, about 6 s on 2 cores)."""

import io
import json
from pathlib import Path

import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from fablab.tests.factories import MembershipFactory
from fablab.tests.helpers import corpus_path
from reconstruction import services
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db

TEMPLE = "photogrammetry/middlebury_templeSparseRing"


def temple_dir() -> Path:
    folder = corpus_path(TEMPLE)
    assert folder.is_dir(), f"photo corpus missing: {folder} (set FABLAB_CORPUS)"
    return folder


@pytest.fixture
def work(tmp_path, settings):
    settings.RECONSTRUCTION_WORK_DIR = tmp_path / "work"
    settings.RECONSTRUCTION_STEP_MAX_FACES = 600  # the STEP of the free-form temple is small or not made
    return settings.RECONSTRUCTION_WORK_DIR


def queued_job(uploads, **kwargs) -> ScanJob:
    owner = MembershipFactory()
    job = services.scan_job_create(organization=owner.organization, user=owner.user, title="Temple", **kwargs)
    for upload in uploads:
        services.scan_photo_add(job=job, upload=upload)
    ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.QUEUED)
    return job


def temple_uploads():
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(temple_dir().glob("*.png"))]


def test_temple_becomes_a_watertight_mesh_at_the_size_entered(work):
    job = queued_job(temple_uploads(), known_dimension_mm=150)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.SUCCEEDED
    job.refresh_from_db()
    report = job.report
    assert report["photos"] == 16 and report["registered_photos"] >= 12
    assert report["reprojection_error_px"] < 1.0
    assert set(job.stage_timings) == {"features", "matching", "mapping", "densify", "meshing", "cleaning", "scaling",
                                      "exporting"}
    assert job.progress == 100 and job.finished_at and job.expires_at
    # a scan always tries the STEP; the free-form temple gets a faceted one or a reason why not
    assert bool(job.cad_step) == ("error" not in report["step"])
    assert report["step"].get("method", "faceted") == "faceted" or report["step"].get("error")
    with job.mesh_stl.open("rb") as handle:
        mesh = trimesh.load(io.BytesIO(handle.read()), file_type="stl")
    assert mesh.is_watertight
    assert max(mesh.extents) == pytest.approx(150, rel=1e-3)
    assert mesh.bounds[0][2] == pytest.approx(0, abs=1e-6)  # stands on the bed
    assert job.mesh_3mf.read(2) == b"PK" and job.preview.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not (work / f"job-{job.pk}").exists()  # temporary files are gone


def test_unrelated_photos_fail_with_advice(work):
    job = queued_job([photo(f"{n}.jpg", seed=n, size=(800, 600)) for n in range(8)])
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.FAILED
    job.refresh_from_db()
    assert "photos" in job.error and ("overlap" in job.error or "placed" in job.error)
    assert "Traceback" not in job.error


def test_cancelled_while_running(work, monkeypatch):
    job = queued_job(temple_uploads())
    from reconstruction import pipeline

    original = pipeline.Context.checkpoint

    def cancel_after_features(self, fraction=0.0):
        if self._stage == "matching":
            ScanJob.objects.filter(pk=job.pk).update(cancel_requested_at="2026-01-01T00:00:00Z")
            self.is_cancelled = lambda: True
        return original(self, fraction)

    monkeypatch.setattr(pipeline.Context, "checkpoint", cancel_after_features)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.CANCELLED
    assert not (work / f"job-{job.pk}").exists()


def test_a_retry_does_not_redo_finished_stages(work, monkeypatch):
    job = queued_job(temple_uploads(), known_dimension_mm=100)
    from reconstruction.pipeline import cleaning

    def broken(context):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cleaning, "run", broken)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.FAILED
    job.refresh_from_db()
    assert "internal error" in job.error
    done = {p.name for p in (work / f"job-{job.pk}" / "stages").glob("*.done")}
    assert done == {"features.done", "matching.done", "mapping.done", "densify.done", "meshing.done"}
    monkeypatch.undo()
    services.scan_job_retry(job=job)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.attempts == 2


def test_reconstruct_command(tmp_path, settings):
    settings.RECONSTRUCTION_STEP_MAX_FACES = 600  # keeps the solid small; the free-form temple may not simplify
    out = tmp_path / "out"
    said = io.StringIO()
    call_command("reconstruct", str(temple_dir()), "--out", str(out), "--known-dimension-mm", "80", "--step",
                 stdout=said)
    report = json.loads((out / "report.json").read_text())
    step = report["step"]
    files = {"mesh.stl", "mesh.3mf", "preview.png", "report.json", "points.ply"}
    assert {p.name for p in out.iterdir()} == (files if step.get("error") else files | {"model.step"})
    assert report["size_mm"] and max(report["size_mm"]) == pytest.approx(80, rel=1e-3)
    if step.get("error"):  # a STEP that cannot be made never fails the scan, and the command says why
        assert step["error"] == "too complex" and "No STEP file was made" in said.getvalue()
    else:
        assert (out / "model.step").read_text().startswith("ISO-10303-21;") and "STEP: " in said.getvalue()
    with pytest.raises(CommandError, match="at least 8"):
        call_command("reconstruct", str(tmp_path), "--out", str(out))


def test_a_finished_scan_becomes_a_catalog_model(work, admin_client):
    from django.urls import reverse

    from catalog.models import ModelVariant

    job = queued_job(temple_uploads(), known_dimension_mm=90)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.SUCCEEDED
    admin_client.post(reverse("admin:reconstruction_scanjob_changelist"),
                      {"action": "add_to_catalog", "_selected_action": [job.pk]})
    variant = ModelVariant.objects.get(sku=f"SCAN-{job.pk}")
    sliced = variant.current_version.sliced_file
    assert variant.model.name == "Temple" and sliced.format == "stl" and sliced.sliced is False
    assert sliced.thumbnails.filter(role="preview").exists()  # the catalog renders the STL
    with pytest.raises(services.Conflict):
        services.scan_job_add_to_catalog(job=queued_job([]))

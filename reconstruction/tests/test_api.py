import pytest
from django.core.files.base import ContentFile

from fablab.choices import ApiKeyScope
from fablab.tests.factories import make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from reconstruction import services
from reconstruction.models import ScanJob, ScanPhoto
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db


def test_partner_creates_uploads_and_starts(api, partner, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(services, "_enqueue", queued.append)
    created = api.post("/api/v1/scans", {"title": "Bracket", "known_dimension_mm": 42.5},
                       content_type="application/json")
    assert created.status_code == 201, created.content
    scan_id = created.json()["id"]
    for n in range(8):
        answer = api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": photo(f"{n}.jpg", seed=n)})
        assert answer.status_code == 201
    again = api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": photo("dup.jpg", seed=0)})
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["photos"] == 8
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(f"/api/v1/scans/{scan_id}/submit")
    assert started.json()["status"] == "queued" and queued == [scan_id]
    detail = api.get(f"/api/v1/scans/{scan_id}").json()
    assert detail["photos"] == 8 and detail["downloads"] == {}
    assert api.get("/api/v1/scans").json()["count"] == 1


def test_bad_photos_and_too_few(api, monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    scan_id = api.post("/api/v1/scans", {"title": "x"}, content_type="application/json").json()["id"]
    assert_problem(api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": photo("b.jpg", blank=True)}), 422,
                   detail_contains="blank")
    assert_problem(api.post(f"/api/v1/scans/{scan_id}/submit"), 422, detail_contains="at least")
    assert_problem(api.post("/api/v1/scans", {"title": ""}, content_type="application/json"), 422)
    assert_problem(api.post("/api/v1/scans", {"title": "x", "known_dimension_mm": -3},
                            content_type="application/json"), 422)


def test_the_answer_names_the_type_the_photo_has(api):
    scan_id = api.post("/api/v1/scans", {"title": "Cup"}, content_type="application/json").json()["id"]
    answer = api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": photo("shot.jpg", fmt="PNG")})
    assert answer.status_code == 201, answer.content
    assert answer.json()["name"] == "shot.jpg" and answer.json()["format"] == "PNG"


def test_isolation_between_organizations(api, other_partner):
    foreign = services.scan_job_create(organization=other_partner, user=None, title="Theirs")
    for method, path in [("get", ""), ("post", "/submit"), ("post", "/cancel"), ("get", "/download/stl")]:
        assert_problem(getattr(api, method)(f"/api/v1/scans/{foreign.pk}{path}"), 404)
    assert_problem(api.post(f"/api/v1/scans/{foreign.pk}/photos", {"photo": photo()}), 404)
    assert api.get("/api/v1/scans").json()["count"] == 0
    assert ScanJob.objects.get(pk=foreign.pk).status == "draft" and not ScanPhoto.objects.exists()


def test_read_keys_cannot_write(partner):
    _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
    assert_problem(ApiClient(raw).post("/api/v1/scans", {"title": "x"}, content_type="application/json"), 403)


def test_downloads_of_a_finished_scan(api, partner):
    job = services.scan_job_create(organization=partner, user=None, title="Done")
    job.mesh_stl.save("mesh.stl", ContentFile(b"solid x\nendsolid x\n"), save=False)
    job.status = "succeeded"
    job.save()
    links = api.get(f"/api/v1/scans/{job.pk}").json()["downloads"]
    assert set(links) == {"stl", "3mf", "png", "ply"}
    response = api.get(links["stl"])
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"solid")
    assert_problem(api.get(links["3mf"]), 404)
    assert_problem(api.get(f"/api/v1/scans/{job.pk}/download/exe"), 404)

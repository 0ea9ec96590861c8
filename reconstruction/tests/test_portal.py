import pytest
from django.urls import reverse

from fablab.choices import MembershipRole
from fablab.tests.factories import MembershipFactory
from reconstruction import services
from reconstruction.models import ScanJob, ScanPhoto
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_job():
    other = MembershipFactory(role=MembershipRole.OWNER)
    return services.scan_job_create(organization=other.organization, user=other.user, title="Not yours")


def test_create_upload_and_start(owner_client, customer_owner, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    response = owner_client.post(reverse("scans:list"), {"title": "Skull", "known_dimension_mm": "180"})
    job = ScanJob.objects.get(organization=customer_owner.organization)
    assert response.status_code == 302 and job.known_dimension_mm == 180
    url = reverse("scans:photo_upload", args=[job.pk])
    for n in range(8):
        answer = owner_client.post(url, {"photo": photo(f"{n}.jpg", seed=n)})
        assert answer.status_code == 201
    assert answer.json()["photos"] == 8
    refused = owner_client.post(url, {"photo": photo("b.jpg", blank=True)})
    assert refused.status_code == 422 and "blank" in refused.json()["error"]
    page = owner_client.get(reverse("scans:detail", args=[job.pk]))
    assert b"photo-drop" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("scans:submit", args=[job.pk]))
    assert owner_client.get(reverse("scans:status", args=[job.pk])).json()["status"] == "queued"


def test_other_organizations_scans_are_not_found(owner_client, foreign_job):
    for name, method in [("detail", "get"), ("status", "get"), ("photo_upload", "post"), ("submit", "post"),
                         ("cancel", "post"), ("delete", "post")]:
        response = getattr(owner_client, method)(reverse(f"scans:{name}", args=[foreign_job.pk]))
        assert response.status_code == 404, name
    assert owner_client.get(reverse("scans:download", args=[foreign_job.pk, "stl"])).status_code == 404
    assert "Not yours" not in owner_client.get(reverse("scans:list")).content.decode()
    assert ScanJob.objects.filter(pk=foreign_job.pk, status="draft").exists()
    assert not ScanPhoto.objects.exists()


def test_downloads_only_once_there_is_a_result(owner_client, customer_owner):
    job = services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user, title="x")
    assert owner_client.get(reverse("scans:download", args=[job.pk, "stl"])).status_code == 404
    assert owner_client.get(reverse("scans:download", args=[job.pk, "exe"])).status_code == 404


def test_submit_cancel_and_delete_say_what_they_did(owner_client, customer_owner, settings, monkeypatch,
                                                    django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)
    settings.RECONSTRUCTION_MIN_PHOTOS = 0

    def post(name, job):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(reverse(f"scans:{name}", args=[job.pk]), follow=True)
        return response.redirect_chain[-1][0], [str(message) for message in response.context["messages"]]

    queued = services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user, title="a")
    detail = reverse("scans:detail", args=[queued.pk])
    assert post("submit", queued) == (detail, ["The scan is queued; this page shows its progress."])
    assert post("cancel", queued) == (detail, ["The scan is being cancelled."])
    assert ScanJob.objects.get(pk=queued.pk).status == "cancelled"
    assert post("delete", queued) == (reverse("scans:list"), ["The scan and its files were deleted."])
    assert not ScanJob.objects.filter(pk=queued.pk).exists()
    assert owner_client.post(reverse("scans:cancel", args=[queued.pk])).status_code == 404

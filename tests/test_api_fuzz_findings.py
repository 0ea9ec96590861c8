"""What fuzzing the API against its document (tests/test_api_fuzz.py) found, each pinned by a plain test."""

from decimal import Decimal

import pytest
from django.urls import reverse

from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.api import api as partner_api
from fablab.tests.factories import MembershipFactory
from fablab.tests.helpers import assert_problem
from inventory.tests.factories import spool
from production.tests.factories import version
from reconstruction.choices import ScanStatus
from reconstruction.services import scan_job_create

pytestmark = pytest.mark.django_db

DOCUMENT = partner_api.get_openapi_schema()


class TestAStoredFileThatIsGone:
    """The row says there is a file; the storage no longer has it: a 404 problem, not a server error."""

    def test_a_version_download(self, api, partner):
        missing = version(variant=VariantFactory(model=ModelFactory(designer=partner)))  # its file was never stored
        response = api.get(f"/api/v1/catalog/variants/{missing.variant_id}/versions/{missing.number}/download")
        assert_problem(response, 404, detail_contains="stored file is missing")

    def test_a_scan_download(self, api, partner):
        job = scan_job_create(organization=partner, user=None, title="Vase")
        job.status = ScanStatus.SUCCEEDED
        job.mesh_stl.name = f"scans/org-{partner.pk}/{job.pk}/result/mesh.stl"
        job.save()
        assert_problem(api.get(f"/api/v1/scans/{job.pk}/download/stl"), 404, detail_contains="stored file is missing")

    def test_a_scan_download_in_the_portal(self, client, partner):
        member = MembershipFactory(organization=partner)
        job = scan_job_create(organization=partner, user=None, title="Vase")
        job.status = ScanStatus.SUCCEEDED
        job.preview.name = f"scans/org-{partner.pk}/{job.pk}/result/preview.png"
        job.save()
        client.force_login(member.user)
        assert client.get(reverse("scans:download", args=[job.pk, "png"])).status_code == 404


class TestABodyThatIsNotJson:
    def test_it_answers_400_as_a_problem(self, api):
        response = api.post("/api/v1/scans", b"\xff{", content_type="application/json")
        assert_problem(response, 400)

    def test_every_operation_with_a_body_declares_400(self):
        with_body = [(path, method, operation) for path, item in DOCUMENT["paths"].items()
                     for method, operation in item.items() if operation.get("requestBody")]
        assert len(with_body) > 10
        for path, method, operation in with_body:
            answer = operation["responses"].get(400)
            assert answer, (method, path)
            assert answer["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_starting_a_scan_declares_the_quota_refusal():
    responses = DOCUMENT["paths"]["/api/v1/scans/{scan_id}/submit"]["post"]["responses"]
    assert {402, 429} <= set(responses)
    assert "plan" in responses[402]["description"]
    assert 402 not in DOCUMENT["paths"]["/api/v1/scans"]["post"]["responses"]


@pytest.mark.parametrize(("action", "field"), [("use", "grams"), ("weigh", "gross_grams"),
                                               ("adjust", "remaining_grams")])
def test_a_huge_negative_weight_is_refused_and_books_nothing(lab_api, action, field):
    """Thirty digits below zero could not be rounded to the microgram (a server error); now a clear 422."""
    received = spool(grams="1000")
    payload = {field: "-42212865401010626930750042530", "reason": "counted"}
    response = lab_api.post(f"/api/v1/inventory/spools/{received.pk}/{action}", payload,
                            content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"huge-{action}")
    assert_problem(response, 422, detail_contains="must be more than 0 g")
    received.refresh_from_db()
    assert received.remaining_grams == Decimal("1000") and received.movements.count() == 1

"""Submitting a scan uses one unit of the organization's plan; a scan that produces nothing gives it back."""

import threading

import pytest
from django.db import connection, connections
from django.urls import reverse

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import UsageLedger
from fablab.exceptions import TooManyRequests
from fablab.tests.factories import MembershipFactory
from fablab.tests.helpers import assert_problem
from reconstruction import pipeline, services
from reconstruction.choices import ScanStatus
from reconstruction.models import ScanJob


@pytest.fixture(autouse=True)
def _no_photos_needed(settings, monkeypatch):
    settings.RECONSTRUCTION_MIN_PHOTOS = 0
    monkeypatch.setattr(services, "_enqueue", lambda job_id: None)


def grant(organization, key):
    billing_services.plan_grant(organization=organization, plan=billing_selectors.plan_get(key=key))


def used(organization) -> dict:
    summary = billing_selectors.usage_summary(organization=organization)
    return {"day": summary["day"]["used"], "month": summary["month"]["used"]}


def new_scan(api, title="x") -> int:
    return api.post("/api/v1/scans", {"title": title}, content_type="application/json").json()["id"]


@pytest.mark.django_db
class TestApi:
    def test_over_the_daily_limit_is_429_with_retry_after(self, api, partner):
        first, second = new_scan(api), new_scan(api)
        assert api.post(f"/api/v1/scans/{first}/submit").json()["status"] == "queued"
        refused = api.post(f"/api/v1/scans/{second}/submit")
        body = assert_problem(refused, 429, detail_contains="a day)")
        assert int(refused["Retry-After"]) > 0 and body["resets_at"] and body["plan"] == "free"
        assert ScanJob.objects.get(pk=second).status == ScanStatus.DRAFT
        assert used(partner) == {"day": 1, "month": 1}

    def test_free_month_used_up_is_402_with_how_to_upgrade(self, api, partner):
        limit = billing_selectors.plan_get(key="free").limits.get(feature="scans")
        limit.per_day = None
        limit.save()
        for _ in range(2):
            assert api.post(f"/api/v1/scans/{new_scan(api)}/submit").status_code == 200
        third = new_scan(api)
        body = assert_problem(api.post(f"/api/v1/scans/{third}/submit"), 402, detail_contains="Upgrade")
        assert body["upgrade_url"] == "/billing/"
        assert ScanJob.objects.get(pk=third).status == ScanStatus.DRAFT

    def test_paid_plan_beyond_the_month_is_accepted_as_overage(self, api, partner):
        grant(partner, "starter")
        limit = billing_selectors.plan_get(key="starter").limits.get(feature="scans")
        limit.per_month = 1
        limit.save()
        for _ in range(2):
            assert api.post(f"/api/v1/scans/{new_scan(api)}/submit").json()["status"] == "queued"
        assert billing_selectors.usage_summary(organization=partner)["overage_units"] == 1

    def test_a_retried_submit_counts_once(self, api, partner):
        grant(partner, "starter")
        scan = new_scan(api)
        assert api.post(f"/api/v1/scans/{scan}/submit").status_code == 200
        assert_problem(api.post(f"/api/v1/scans/{scan}/submit"), 409)
        assert UsageLedger.objects.filter(organization=partner).count() == 1
        assert used(partner) == {"day": 1, "month": 1}


@pytest.mark.django_db
class TestRefunds:
    @pytest.fixture
    def queued(self):
        owner = MembershipFactory()
        job = services.scan_job_create(organization=owner.organization, user=owner.user, title="Vase")
        return services.scan_job_submit(job=job)

    def test_a_failed_scan_gives_its_unit_back_and_a_retry_uses_one_again(self, queued, monkeypatch, tmp_path,
                                                                         settings):
        settings.RECONSTRUCTION_WORK_DIR = tmp_path

        def fail(context):
            raise pipeline.ScanFailed("too few matches")

        monkeypatch.setattr(pipeline, "run", fail)
        organization = queued.organization
        assert used(organization) == {"day": 1, "month": 1}
        assert services.scan_job_run(job_id=queued.pk) == ScanStatus.FAILED
        assert used(organization) == {"day": 0, "month": 0}
        assert list(UsageLedger.objects.filter(organization=organization).order_by("pk")
                    .values_list("key", "direction")) == [(f"scan-{queued.pk}-run-1", "consume"),
                                                          (f"scan-{queued.pk}-run-1", "refund")]
        services.scan_job_retry(job=queued)
        assert used(organization) == {"day": 1, "month": 1}

    def test_a_scan_cancelled_before_it_ran_gives_its_unit_back(self, queued):
        services.scan_job_cancel(job=queued)
        assert used(queued.organization) == {"day": 0, "month": 0}

    def test_a_stalled_scan_gives_its_unit_back(self, queued, settings):
        from datetime import timedelta

        from django.utils import timezone

        ScanJob.objects.filter(pk=queued.pk).update(status=ScanStatus.RUNNING, attempts=1,
                                                    started_at=timezone.now() - timedelta(days=1))
        assert services.scan_jobs_fail_stalled() == 1
        assert used(queued.organization) == {"day": 0, "month": 0}


@pytest.mark.django_db
def test_portal_says_when_the_day_resets(owner_client, customer_owner):
    organization = customer_owner.organization
    jobs = [services.scan_job_create(organization=organization, user=customer_owner.user, title=t) for t in "ab"]
    owner_client.post(reverse("scans:submit", args=[jobs[0].pk]))
    response = owner_client.post(reverse("scans:submit", args=[jobs[1].pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("scans:detail", args=[jobs[1].pk])
    messages = [str(m) for m in response.context["messages"]]
    assert "Today's allowance of scans on the Free plan (1 a day) is used up. It resets at" in messages[-1]
    assert ScanJob.objects.get(pk=jobs[1].pk).status == ScanStatus.DRAFT


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="concurrent transactions need PostgreSQL (SQLite runs one writer at a time)")
def test_thirty_concurrent_submits_at_a_daily_limit_of_five_accept_exactly_five():
    owner = MembershipFactory()
    grant(owner.organization, "starter")  # 5 scans a day
    jobs = [services.scan_job_create(organization=owner.organization, user=owner.user, title=f"s{n}")
            for n in range(30)]
    barrier = threading.Barrier(30)
    errors = []

    def submit(job):
        try:
            barrier.wait()
            services.scan_job_submit(job=job)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 25 and all(isinstance(e, TooManyRequests) for e in errors), errors
    assert ScanJob.objects.filter(status=ScanStatus.QUEUED).count() == 5
    assert used(owner.organization) == {"day": 5, "month": 5}

"""The overage outbox: each overage unit reported to Stripe's billing meter once, retried, reconciled."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services, stripe_gateway, tasks
from billing.choices import SCANS, PlanSource
from billing.models import OrganizationPlan, OverageReport, PlanLimit
from billing.tests.factories import on_plan
from billing.tests.fake_stripe import LOST
from fablab.exceptions import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture
def meter(fake):
    return stripe_gateway.meter_get_or_create(event_name="fablab_scans", display_name="Scans")[0]


@pytest.fixture
def paying(fake, org, meter):
    """`org` pays for Starter through Stripe, with an allowance of one scan a month (the next is overage)."""
    customer = stripe_gateway.customer_get_or_create(organization=org)
    on_plan(org, "starter")
    OrganizationPlan.objects.filter(organization=org).update(source=PlanSource.STRIPE, stripe_subscription_id="sub_x")
    PlanLimit.objects.filter(plan__key="starter").update(per_month=1, per_day=None)
    services.usage_consume(organization=org, feature=SCANS, key="scan-1-run-1")
    return customer


def consume(org, key, now=None):
    return services.usage_consume(organization=org, feature=SCANS, key=key, now=now)


def report(key) -> OverageReport:
    return OverageReport.objects.get(identifier=key)


def test_an_overage_unit_gets_an_outbox_row_in_the_same_transaction(paying, org):
    assert not OverageReport.objects.exists()  # the allowance's unit is not billed per unit
    entry = consume(org, "scan-2-run-1")
    row = OverageReport.objects.get()
    assert (row.ledger, row.identifier, row.event_name, row.status, row.value) == (
        entry, "scan-2-run-1", "fablab_scans", "pending", 1)
    consume(org, "scan-2-run-1")  # the same submit again: no second row
    assert OverageReport.objects.count() == 1


def test_a_complimentary_plan_reports_no_overage_to_stripe(org, fake):
    on_plan(org, "starter")
    PlanLimit.objects.filter(plan__key="starter").update(per_month=0, per_day=None)
    assert consume(org, "scan-9-run-1").overage
    assert not OverageReport.objects.exists()


def test_the_task_run_twice_reports_the_unit_once(paying, org, fake):
    consume(org, "scan-2-run-1")
    assert tasks.report_overage() == {"sent": 1}
    assert tasks.report_overage() == {}
    assert len(fake.requests_to("post", "billing/meter_events")) == 1
    sent = fake.meter_events["scan-2-run-1"]
    assert sent["payload"] == {"stripe_customer_id": paying.id, "value": "1"}
    assert sent["event_name"] == "fablab_scans"
    row = report("scan-2-run-1")
    assert (row.status, row.attempts, row.stripe_customer_id, row.last_error) == ("sent", 1, paying.id, "")
    assert int(row.occurred_at.timestamp()) == sent["timestamp"]


def test_a_timeout_after_stripe_recorded_the_event_then_a_retry_does_not_report_twice(paying, org, fake):
    now = timezone.now()
    consume(org, "scan-2-run-1", now=now)
    fake.fail_next("billing/meter_events", LOST)  # Stripe keeps the event, the answer is lost
    assert services.overage_reports_send(now=now) == {"retry": 1}
    row = report("scan-2-run-1")
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, now + timedelta(seconds=60))
    assert "Stripe could not report usage" in row.last_error
    assert services.overage_reports_send(now=now + timedelta(seconds=30)) == {}  # not due yet
    assert services.overage_reports_send(now=now + timedelta(seconds=60)) == {"sent": 1}
    assert len(fake.requests_to("post", "billing/meter_events")) == 2  # sent again with the same identifier...
    assert list(fake.meter_events) == ["scan-2-run-1"]  # ...which Stripe refused: one event
    assert report("scan-2-run-1").status == "sent"


def test_transient_failures_back_off_exponentially_then_fail_visibly(paying, org, fake, settings, admin_client):
    settings.BILLING_METER_MAX_ATTEMPTS = 4
    now = timezone.now()
    consume(org, "scan-2-run-1", now=now)
    fake.fail_next("billing/meter_events", TimeoutError("slow"), 500, 429, 503)
    delays, moment = [], now
    for _attempt in range(3):
        assert services.overage_reports_send(now=moment) == {"retry": 1}
        row = report("scan-2-run-1")
        delays.append((row.next_attempt_at - moment).total_seconds())
        moment = row.next_attempt_at
    assert delays == [60, 120, 240]
    assert services.overage_reports_send(now=moment) == {"failed": 1}
    row = report("scan-2-run-1")
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 4, None)
    assert not fake.meter_events
    page = admin_client.get(reverse("admin:billing_overagereport_changelist")).content.decode()
    assert "Failed (needs staff)" in page and "scan-2-run-1" in page
    # staff retry: sent at the next run
    admin_client.post(reverse("admin:billing_overagereport_changelist"),
                      {"action": "retry", "_selected_action": [row.pk]})
    assert (report("scan-2-run-1").status, report("scan-2-run-1").attempts) == ("pending", 0)
    assert tasks.report_overage() == {"sent": 1}
    assert list(fake.meter_events) == ["scan-2-run-1"]


def test_a_refusal_fails_at_once_without_retries(paying, org, fake):
    consume(org, "scan-2-run-1")
    fake.fail_next("billing/meter_events", 400)
    assert tasks.report_overage() == {"failed": 1}
    row = report("scan-2-run-1")
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "Injected failure")


def test_an_organization_without_a_stripe_customer_fails_visibly(paying, org, fake):
    from djstripe.models import Customer

    consume(org, "scan-2-run-1")
    Customer.objects.filter(subscriber=org).delete()
    assert tasks.report_overage() == {"failed": 1}
    assert report("scan-2-run-1").last_error == "The organization has no Stripe customer."
    assert not fake.requests_to("post", "billing/meter_events")


def test_a_unit_refunded_before_it_was_sent_is_never_reported(paying, org, fake):
    consume(org, "scan-2-run-1")
    services.usage_refund(organization=org, feature=SCANS, key="scan-2-run-1")
    assert report("scan-2-run-1").status == "cancelled"
    assert tasks.report_overage() == {}
    assert not fake.requests_to("post", "billing/meter_events")


def test_a_failed_report_of_a_refunded_unit_is_cancelled_not_retried(paying, org, fake):
    consume(org, "scan-2-run-1")
    fake.fail_next("billing/meter_events", 400)
    tasks.report_overage()
    services.usage_refund(organization=org, feature=SCANS, key="scan-2-run-1")
    assert report("scan-2-run-1").status == "cancelled"
    with pytest.raises(Conflict):
        services.overage_report_retry(report=report("scan-2-run-1"))


def test_a_unit_refunded_after_it_was_sent_is_cancelled_at_stripe(paying, org, fake):
    consume(org, "scan-2-run-1")
    tasks.report_overage()
    services.usage_refund(organization=org, feature=SCANS, key="scan-2-run-1")
    assert report("scan-2-run-1").status == "withdrawing"
    assert tasks.report_overage() == {"withdrawn": 1}
    assert tasks.report_overage() == {}
    assert [a["cancel"] for a in fake.meter_adjustments] == [{"identifier": "scan-2-run-1"}]
    assert report("scan-2-run-1").status == "withdrawn"
    services.usage_refund(organization=org, feature=SCANS, key="scan-2-run-1")  # again: nothing more
    assert len(fake.meter_adjustments) == 1


def test_reconciliation_finds_the_outbox_and_stripe_agree_or_not(paying, org, fake, meter):
    now = timezone.now()
    consume(org, "scan-2-run-1", now=now)
    consume(org, "scan-3-run-1", now=now)
    services.overage_reports_send(now=now)
    later = now + timedelta(hours=1)
    assert services.overage_reconcile(now=later) == []
    summaries = fake.requests_to("get", f"billing/meters/{meter.id}/event_summaries")
    assert summaries[0]["customer"] == paying.id
    assert int(summaries[0]["end_time"]) % 60 == 0 and int(summaries[0]["start_time"]) % 60 == 0
    # Stripe holds an event the outbox does not know of
    fake.meter_events["stray"] = {"event_name": "fablab_scans", "identifier": "stray",
                                  "timestamp": int(now.timestamp()),
                                  "payload": {"stripe_customer_id": paying.id, "value": "1"}}
    [difference] = services.overage_reconcile(now=later)
    assert (difference["customer"], difference["outbox"], difference["stripe"]) == (paying.id, 2, 3)


def test_the_outbox_tasks_are_scheduled():
    from fablab.schedules import SCHEDULES

    funcs = {s.func: s for s in SCHEDULES}
    assert funcs["billing.tasks.report_overage"].minutes == 1
    assert "billing.tasks.reconcile_overage" in funcs

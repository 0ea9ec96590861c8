"""Stripe's subscription and invoice events set the organization's plan: once, and in any order."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from djstripe.models import Event, WebhookEventTrigger

from billing import selectors, stripe_gateway
from billing.models import OrganizationPlan
from billing.tests import fake_stripe
from billing.tests.conftest import sign
from billing.tests.factories import on_plan

pytestmark = pytest.mark.django_db

NOW = int(time.time())
DAY = 86400


@pytest.fixture
def customer(fake, org):
    return stripe_gateway.customer_get_or_create(organization=org)


def subscription(fake, customer, prices, plan="starter", *, status="active", start=NOW - DAY, sub_id=None):
    keys = [f"fablab_{plan}_monthly", f"fablab_{plan}_scan_overage"]
    return fake_stripe.subscription(fake, customer_id=customer.id, prices=[prices[k] for k in keys], status=status,
                                    period_start=start, period_end=start + 30 * DAY, subscription_id=sub_id)


def event(fake, kind, obj, *, created=None):
    return fake_stripe.event(fake, kind, obj, created=created)


def utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def test_a_new_subscription_gives_its_plan_for_the_items_billing_period(fake, stripe_prices, customer, org, deliver):
    sub = subscription(fake, customer, stripe_prices, "professional", start=NOW - 3 * DAY)
    assert "current_period_end" not in sub  # API 2025-03-31: only the items carry the period
    assert deliver(event(fake, "customer.subscription.created", sub)).status_code == 200
    row = OrganizationPlan.objects.get(organization=org)
    assert (row.plan.key, row.source, row.stripe_subscription_id) == ("professional", "stripe", sub["id"])
    assert (row.period_start, row.period_end) == (utc(NOW - 3 * DAY), utc(NOW + 27 * DAY))
    entitlement = selectors.entitlement_get(organization=org)
    assert (entitlement.plan.key, entitlement.period_start) == ("professional", utc(NOW - 3 * DAY))
    assert Event.objects.filter(type="customer.subscription.created").count() == 1  # dj-stripe stored it


def test_the_same_event_twice_is_applied_once(fake, stripe_prices, customer, org, deliver):
    payload = event(fake, "customer.subscription.updated", subscription(fake, customer, stripe_prices))
    assert deliver(payload).status_code == 200
    OrganizationPlan.objects.filter(organization=org).update(note="touched after the first delivery")
    assert deliver(payload).status_code == 200
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 2
    assert Event.objects.filter(id=payload["id"]).count() == 1
    assert OrganizationPlan.objects.get(organization=org).note == "touched after the first delivery"


def test_an_older_update_arriving_after_a_newer_one_changes_nothing(fake, stripe_prices, customer, org, deliver):
    sub = subscription(fake, customer, stripe_prices, "starter")
    older = event(fake, "customer.subscription.updated", sub, created=NOW - 60)
    upgraded = subscription(fake, customer, stripe_prices, "business", sub_id=sub["id"])
    newer = event(fake, "customer.subscription.updated", upgraded, created=NOW)
    deliver(newer)
    assert deliver(older).status_code == 200
    row = OrganizationPlan.objects.get(organization=org)
    assert row.plan.key == "business" and row.stripe_event_at == utc(NOW)


def test_a_deleted_subscription_puts_the_organization_on_free_and_stays_so(fake, stripe_prices, customer, org,
                                                                            deliver):
    sub = subscription(fake, customer, stripe_prices, "starter")
    deliver(event(fake, "customer.subscription.created", sub, created=NOW - 120))
    canceled = subscription(fake, customer, stripe_prices, "starter", status="canceled", sub_id=sub["id"])
    deliver(event(fake, "customer.subscription.deleted", canceled, created=NOW))
    assert selectors.entitlement_get(organization=org).plan.key == "free"
    row = OrganizationPlan.objects.get(organization=org)
    assert (row.plan.key, row.source, row.period_end) == ("free", "default", None)
    # a late update from before the cancellation does not bring the plan back
    deliver(event(fake, "customer.subscription.updated", sub, created=NOW - 60))
    assert selectors.entitlement_get(organization=org).plan.key == "free"
    assert "Active subscriptions" in {k["label"] for k in selectors.billing_kpis()}
    assert dict((k["label"], k["value"]) for k in selectors.billing_kpis())["Active subscriptions"] == 0


def test_an_old_subscription_ending_leaves_a_comp_alone(fake, stripe_prices, customer, org, deliver):
    on_plan(org, "business")
    canceled = subscription(fake, customer, stripe_prices, "starter", status="canceled")
    deliver(event(fake, "customer.subscription.deleted", canceled))
    assert OrganizationPlan.objects.get(organization=org).plan.key == "business"


def test_an_incomplete_subscription_gives_nothing_yet(fake, stripe_prices, customer, org, deliver):
    deliver(event(fake, "customer.subscription.created",
                  subscription(fake, customer, stripe_prices, status="incomplete")))
    assert selectors.entitlement_get(organization=org).plan.key == "free"


def test_checkout_completed_applies_the_subscription_it_made(fake, stripe_prices, customer, org, deliver):
    sub = subscription(fake, customer, stripe_prices, "professional")
    session = fake.add("checkout/sessions", {
        "id": "cs_test_done", "object": "checkout.session", "mode": "subscription", "customer": customer.id,
        "subscription": sub["id"], "status": "complete", "payment_status": "paid", "client_reference_id": str(org.pk),
        "metadata": {"organization": str(org.pk), "plan": "professional"}, "url": None, "created": NOW})
    assert deliver(event(fake, "checkout.session.completed", session)).status_code == 200
    assert OrganizationPlan.objects.get(organization=org).plan.key == "professional"
    assert fake.requests_to("get", f"subscriptions/{sub['id']}")


def invoice(fake, customer, sub, status):
    return fake.add("invoices", {
        "id": fake.new_id("in"), "object": "invoice", "customer": customer.id, "status": status,
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub["id"]}},
        "hosted_invoice_url": "https://invoice.stripe.com/i/fake", "number": "FAKE-0001", "total": 2900,
        "amount_due": 2900, "amount_paid": 2900 if status == "paid" else 0, "currency": "gbp", "created": NOW,
        "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices/lines"},
        "period_start": NOW - DAY, "period_end": NOW, "metadata": {}, "attempt_count": 1, "livemode": False})


def test_a_failed_payment_starts_the_grace_period_then_free_and_a_payment_ends_it(
        fake, stripe_prices, customer, org, deliver, settings):
    settings.BILLING_GRACE_DAYS = 3
    sub = subscription(fake, customer, stripe_prices, "professional")
    deliver(event(fake, "customer.subscription.created", sub, created=NOW - 600))
    deliver(event(fake, "invoice.payment_failed", invoice(fake, customer, sub, "open"), created=NOW - 300))
    row = OrganizationPlan.objects.get(organization=org)
    assert row.grace_until == utc(NOW - 300) + timedelta(days=3)
    assert selectors.entitlement_get(organization=org, now=utc(NOW + 2 * DAY)).plan.key == "professional"
    assert selectors.entitlement_get(organization=org, now=utc(NOW + 3 * DAY)).plan.key == "free"
    # Stripe retries the charge: another failure does not extend the grace period
    deliver(event(fake, "invoice.payment_failed", invoice(fake, customer, sub, "open"), created=NOW - 200))
    assert OrganizationPlan.objects.get(organization=org).grace_until == row.grace_until
    deliver(event(fake, "invoice.paid", invoice(fake, customer, sub, "paid"), created=NOW - 100))
    assert OrganizationPlan.objects.get(organization=org).grace_until is None
    # a failure from before the payment, arriving late, starts nothing
    deliver(event(fake, "invoice.payment_failed", invoice(fake, customer, sub, "open"), created=NOW - 400))
    assert OrganizationPlan.objects.get(organization=org).grace_until is None
    assert selectors.entitlement_get(organization=org, now=utc(NOW + 10 * DAY)).plan.key == "professional"


def test_an_event_of_an_unknown_customer_changes_nothing(fake, stripe_prices, org, deliver):
    stranger = fake.add("customers", {"id": "cus_stranger", "object": "customer", "metadata": {}, "email": None,
                                      "created": NOW, "invoice_settings": {}, "balance": 0})
    sub = fake_stripe.subscription(fake, customer_id=stranger["id"], prices=[stripe_prices["fablab_starter_monthly"]],
                                   period_start=NOW, period_end=NOW + 30 * DAY)
    assert deliver(event(fake, "customer.subscription.created", sub)).status_code == 200
    assert not OrganizationPlan.objects.exists()


def test_a_forged_subscription_event_is_refused_and_changes_nothing(fake, stripe_prices, customer, client, endpoint):
    body = json.dumps(event(fake, "customer.subscription.created",
                            subscription(fake, customer, stripe_prices, "business"))).encode()
    response = client.post(f"/stripe/webhook/{endpoint.djstripe_uuid}/", body, content_type="application/json",
                           headers={"Stripe-Signature": sign(body, "whsec_forged")})
    assert response.status_code == 400
    assert not OrganizationPlan.objects.exists() and not Event.objects.exists()


def test_plan_changes_from_stripe_are_audited_once(fake, stripe_prices, customer, org, deliver):
    from fablab.choices import AuditAction
    from fablab.models import AuditEntry

    sub = subscription(fake, customer, stripe_prices, "starter")
    assert deliver(event(fake, "customer.subscription.created", sub, created=NOW - 60)).status_code == 200
    assert deliver(event(fake, "customer.subscription.updated", sub, created=NOW - 30)).status_code == 200
    entries = list(AuditEntry.objects.filter(action=AuditAction.PLAN_CHANGED))
    assert len(entries) == 1  # the same plan again is no change
    assert (entries[0].organization, entries[0].actor, entries[0].extra["plan"], entries[0].extra["source"]) == (
        org, None, "starter", "stripe")
    ended = subscription(fake, customer, stripe_prices, "starter", status="canceled", sub_id=sub["id"])
    assert deliver(event(fake, "customer.subscription.deleted", ended, created=NOW)).status_code == 200
    last = AuditEntry.objects.filter(action=AuditAction.PLAN_CHANGED).order_by("pk").last()
    assert (last.extra["plan"], last.extra["status"]) == ("free", "canceled")

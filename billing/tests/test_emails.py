"""E-mails to an organization's owners when a payment fails (grace period) and when the grace runs out (Free)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing import selectors, services, stripe_gateway, tasks
from billing.models import OrganizationPlan
from billing.tests import fake_stripe
from fablab.choices import MembershipRole
from fablab.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

NOW = int(datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp())
DAY = 86400


def utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


@pytest.fixture
def paying(fake, stripe_prices, org, settings):
    """`org` (named with characters e-mail must not escape) pays for Professional; two owners and a member."""
    settings.BILLING_GRACE_DAYS = 3
    settings.PORTAL_BASE_URL = "https://fab.example"
    org.name = "Müller & Söhne"
    org.save()
    owners = [MembershipFactory(organization=org, role=MembershipRole.OWNER).user for _ in range(2)]
    MembershipFactory(organization=org, role=MembershipRole.MEMBER)
    customer = stripe_gateway.customer_get_or_create(organization=org)
    sub = fake_stripe.subscription(fake, customer_id=customer.id, period_start=NOW - DAY, period_end=NOW + 29 * DAY,
                                   prices=[stripe_prices["fablab_professional_monthly"],
                                           stripe_prices["fablab_professional_scan_overage"]])
    services.subscription_apply(subscription=sub, event_created=utc(NOW - 600))
    return {"customer": customer, "subscription": sub, "owners": sorted(u.email for u in owners)}


def fail_payment(fake, paying, created, django_capture_on_commit_callbacks):
    invoice = fake_stripe.invoice(fake, customer_id=paying["customer"].id,
                                  subscription_id=paying["subscription"]["id"], status="open")
    with django_capture_on_commit_callbacks(execute=True):
        return services.invoice_payment_failed(invoice=invoice, event_created=utc(created))


def test_a_failed_payment_tells_the_owners_once_that_the_grace_period_started(
        fake, paying, org, mailoutbox, django_capture_on_commit_callbacks, deliver):
    invoice = fake_stripe.invoice(fake, customer_id=paying["customer"].id,
                                  subscription_id=paying["subscription"]["id"], status="open")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(fake_stripe.event(fake, "invoice.payment_failed", invoice, created=NOW)).status_code == 200
    [mail] = mailoutbox
    assert sorted(mail.to) == paying["owners"]
    assert mail.subject == "[fablab] Payment failed: Müller & Söhne keeps the Professional plan until March 13, 2026"
    assert "Stripe could not collect the payment for the Professional plan of Müller & Söhne." in mail.body
    assert "The plan's limits stay until March 13, 2026, 1 p.m. (Europe/Berlin)" in mail.body
    assert "https://fab.example/billing/" in mail.body and "falls back to the Free plan" in mail.body
    # Stripe retries and fails again: the grace period runs on, no second e-mail
    fail_payment(fake, paying, NOW + 60, django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 1


def test_the_e_mails_are_in_german_on_a_german_site(fake, paying, org, mailoutbox, settings,
                                                   django_capture_on_commit_callbacks):
    settings.LANGUAGE_CODE = "de"
    fail_payment(fake, paying, NOW, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.graces_expire(now=utc(NOW + 3 * DAY))
    started, ended = mailoutbox
    assert started.subject == "[fablab] Zahlung fehlgeschlagen: Müller & Söhne behält den Tarif Professional bis " \
                              "13. März 2026"
    assert "Stripe konnte die Zahlung für den Tarif Professional von Müller & Söhne nicht einziehen." in started.body
    assert ended.subject == "[fablab] Müller & Söhne ist jetzt im Tarif Free"
    assert ended.body.startswith("Hallo,") and "Abrechnung verwalten" in ended.body


def test_an_expired_grace_puts_the_organization_on_free_and_tells_the_owners_once(
        fake, paying, org, mailoutbox, django_capture_on_commit_callbacks):
    fail_payment(fake, paying, NOW, django_capture_on_commit_callbacks)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.graces_expire(now=utc(NOW + 3 * DAY - 1)) == 0  # not over yet
    assert not mailoutbox
    with django_capture_on_commit_callbacks(execute=True):
        assert services.graces_expire(now=utc(NOW + 3 * DAY)) == 1
        assert services.graces_expire(now=utc(NOW + 4 * DAY)) == 0  # found once
    [mail] = mailoutbox
    assert sorted(mail.to) == paying["owners"]
    assert mail.subject == "[fablab] Müller & Söhne is on the Free plan now"
    assert "is on the Free plan now: scans stop at its allowance" in mail.body
    assert selectors.entitlement_get(organization=org, now=utc(NOW + 3 * DAY)).plan.key == "free"
    row = OrganizationPlan.objects.get(organization=org)
    assert row.grace_ended_at == utc(NOW + 3 * DAY)
    # paying late restores the plan, and a later failure starts (and announces) a new grace period
    services.invoice_paid(invoice={"customer": paying["customer"].id}, event_created=utc(NOW + 5 * DAY))
    row.refresh_from_db()
    assert (row.grace_until, row.grace_ended_at) == (None, None)
    assert selectors.entitlement_get(organization=org, now=utc(NOW + 5 * DAY)).plan.key == "professional"
    fail_payment(fake, paying, NOW + 20 * DAY, django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 2 and "Payment failed" in mailoutbox[1].subject


def test_the_scheduled_task_finds_expired_graces(fake, paying, org, mailoutbox, django_capture_on_commit_callbacks):
    from fablab.schedules import SCHEDULES

    assert "billing.tasks.expire_graces" in {s.func for s in SCHEDULES}
    fail_payment(fake, paying, int((datetime.now(UTC) - timedelta(days=4)).timestamp()),
                 django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire_graces() == 1
    assert mailoutbox[-1].subject.endswith("is on the Free plan now")


def test_an_organization_without_owner_addresses_gets_no_mail_and_nothing_fails(
        fake, paying, org, mailoutbox, django_capture_on_commit_callbacks):
    from fablab.models import User

    User.objects.filter(memberships__organization=org).update(email="")
    fail_payment(fake, paying, NOW, django_capture_on_commit_callbacks)
    assert not mailoutbox
    assert OrganizationPlan.objects.get(organization=org).grace_until == utc(NOW + 3 * DAY)


def test_dashboard_mrr_and_failed_payments_follow_subscriptions_graces_and_the_outbox(
        fake, stripe_prices, org, deliver, django_capture_on_commit_callbacks):
    from billing.models import OverageReport, UsageLedger
    from fablab.tests.factories import OrganizationFactory

    def kpis(now):
        return {row["label"]: row["value"] for row in selectors.billing_kpis(now=now)}

    now = int(datetime.now(UTC).timestamp())
    # org subscribed to Professional before its price rose: an archived £89 price, kept by the subscription
    old_price = fake_stripe.price(fake, product_id=stripe_prices["fablab_professional_monthly"]["product"],
                                  lookup_key=None, unit_amount=8900)
    customer = stripe_gateway.customer_get_or_create(organization=org)
    sub = fake_stripe.subscription(fake, customer_id=customer.id, prices=[
        old_price, stripe_prices["fablab_professional_scan_overage"]], period_start=now - DAY,
        period_end=now + 29 * DAY)
    OrganizationPlan.objects.create(organization=org, plan=selectors.plan_get(key="professional"),
                                    source="stripe", stripe_subscription_id=sub["id"])
    assert deliver(fake_stripe.event(fake, "customer.subscription.updated", sub, created=now)).status_code == 200
    # another organization's Starter payment failed two grace periods ago
    late = OrganizationFactory()
    OrganizationPlan.objects.create(organization=late, plan=selectors.plan_get(key="starter"), source="stripe",
                                    stripe_subscription_id="sub_late", grace_until=utc(now) - timedelta(days=1))
    figures = kpis(utc(now))
    # what the subscription charges, not the plan's £99; the late one not
    assert figures["MRR (GBP)"] == Decimal("89.00")
    assert (figures["Active subscriptions"], figures["Professional"]) == (1, 1)
    assert figures["Failed payments (in grace)"] == 0
    assert figures["Failed payments (fell back to Free)"] == 1
    # org's payment fails: still counted in MRR while in grace, and counted as failed
    invoice = fake_stripe.invoice(fake, customer_id=customer.id, subscription_id=sub["id"], status="open")
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_payment_failed(invoice=invoice, event_created=utc(now))
    figures = kpis(utc(now) + timedelta(hours=1))
    assert (figures["MRR (GBP)"], figures["Failed payments (in grace)"]) == (Decimal("89.00"), 1)
    figures = kpis(utc(now) + timedelta(days=8))
    assert (figures["MRR (GBP)"], figures["Failed payments (fell back to Free)"]) == (Decimal("0.00"), 2)
    # an overage report that failed for good shows
    entry = UsageLedger.objects.create(organization=org, feature="scans", key="scan-1-run-1", direction="consume",
                                       delta=1, overage=True, plan_key="professional", month_start=utc(now),
                                       day_start=utc(now))
    OverageReport.objects.create(organization=org, ledger=entry, feature="scans", event_name="fablab_scans",
                                 identifier=entry.key, occurred_at=utc(now), status="failed")
    assert kpis(utc(now))["Overage reports failed"] == 1

"""Deleting an organization ends its Stripe subscription first (fablab's signal, billing's receiver)."""

import time

import pytest
from django.urls import reverse
from djstripe.models import Customer

from billing import selectors, stripe_gateway
from billing.choices import PlanSource
from billing.models import OrganizationPlan
from billing.tests import fake_stripe
from fablab.choices import AuditAction, MembershipRole
from fablab.models import AuditEntry, Organization
from fablab.tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def owner(org):
    return MembershipFactory(organization=org, role=MembershipRole.OWNER)


@pytest.fixture
def paying(fake, stripe_prices, org):
    """The organization pays for Starter through Stripe: its customer, its subscription and its plan row."""
    customer = stripe_gateway.customer_get_or_create(organization=org)
    sub = fake_stripe.subscription(
        fake, customer_id=customer.id, period_start=NOW - 86400, period_end=NOW + 29 * 86400,
        prices=[stripe_prices["fablab_starter_monthly"], stripe_prices["fablab_starter_scan_overage"]])
    OrganizationPlan.objects.create(organization=org, plan=selectors.plan_get(key="starter"),
                                    source=PlanSource.STRIPE, stripe_subscription_id=sub["id"])
    return customer, sub


def delete(client, owner):
    client.force_login(owner.user)
    return client.post(reverse("portal:organization_delete"),
                       {"name": owner.organization.name, "password": PASSWORD})


def test_deleting_the_organization_cancels_its_subscription_and_keeps_its_invoices_customer(
    client, run_tasks, fake, org, owner, paying,
):
    customer, sub = paying
    with run_tasks():
        assert delete(client, owner).status_code == 302
    assert fake.requests_to("delete", f"subscriptions/{sub['id']}") == [{}]
    assert fake.objects[f"subscriptions/{sub['id']}"]["status"] == "canceled"
    assert not Organization.objects.filter(pk=org.pk).exists()
    assert not OrganizationPlan.objects.filter(organization_id=org.pk).exists()
    customer = Customer.objects.get(pk=customer.pk)  # dj-stripe's customer (and its invoices) stay, unlinked
    assert customer.subscriber is None
    cancelled = AuditEntry.objects.get(action=AuditAction.PLAN_CHANGED, extra__cancelled=sub["id"])
    assert cancelled.actor == owner.user
    assert AuditEntry.objects.filter(action=AuditAction.ORGANIZATION_DELETED, extra__organization_id=org.pk).exists()


def test_when_stripe_cannot_cancel_nothing_is_deleted(client, run_tasks, fake, org, owner, paying):
    _customer, sub = paying
    fake.fail_next(f"subscriptions/{sub['id']}", 500, 500, 500)
    with run_tasks():
        response = delete(client, owner)
    assert response.status_code == 400
    assert "Stripe could not cancel the subscription" in response.content.decode()
    org.refresh_from_db()
    assert org.is_active and org.deletion_requested_at is None
    assert OrganizationPlan.objects.filter(organization=org, stripe_subscription_id=sub["id"]).exists()
    assert not AuditEntry.objects.filter(action=AuditAction.ORGANIZATION_DELETED).exists()


def test_a_subscription_stripe_no_longer_knows_does_not_block_the_deletion(client, run_tasks, fake, org, owner,
                                                                            paying):
    _customer, sub = paying
    del fake.objects[f"subscriptions/{sub['id']}"]
    with run_tasks():
        assert delete(client, owner).status_code == 302
    assert not Organization.objects.filter(pk=org.pk).exists()


def test_an_organization_without_a_subscription_calls_stripe_for_nothing(client, run_tasks, fake, org, owner):
    with run_tasks():
        assert delete(client, owner).status_code == 302
    assert [call for call in fake.calls if call[0] == "delete"] == []
    assert not Organization.objects.filter(pk=org.pk).exists()

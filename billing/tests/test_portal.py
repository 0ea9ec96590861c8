from decimal import Decimal

import pytest
from django.urls import reverse
from djstripe.models import Customer

from billing import selectors, services
from billing.choices import SCANS
from billing.models import OrganizationPlan
from billing.tests.factories import on_plan
from fablab.choices import MembershipRole
from fablab.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_plans_current_plan_and_usage_bars(owner_client, customer_owner):
    organization = customer_owner.organization
    on_plan(organization, "professional")
    services.usage_consume(organization=organization, feature=SCANS, key="a")
    page = owner_client.get(reverse("billing:overview"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your plan: Professional" in html and "Complimentary plan" in html
    for key in ("free", "starter", "professional", "business"):
        assert f'data-testid="plan-{key}"' in html
    assert "1 of 200 scans" in html and "1 of 25 scans" in html
    assert 'max="200" value="1"' in html and "Resets at" in html and "Europe/Berlin" in html
    assert "29.00 GBP" in html and "0.60 GBP per scan" in html


def test_unlimited_day_is_said_so(owner_client, customer_owner):
    on_plan(customer_owner.organization, "business")
    assert "no daily limit" in owner_client.get(reverse("billing:overview")).content.decode()


def test_login_required(client):
    response = client.get(reverse("billing:overview"))
    assert response.status_code == 302 and "login" in response["Location"]


# --- Subscribe and Manage billing (Stripe Checkout and the Customer Portal, through the fake Stripe) ----------

def subscribe(client, plan_key="starter"):
    return client.post(reverse("billing:checkout", args=[plan_key]))


def test_subscribe_creates_the_customer_first_then_checkout_with_both_prices(owner_client, customer_owner,
                                                                            fake, stripe_prices):
    organization = customer_owner.organization
    response = subscribe(owner_client, "professional")
    assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/c/pay/")
    posts = [path for method, path, _params in fake.calls if method == "post"]
    assert posts == ["customers", "checkout/sessions"]
    customer = Customer.objects.get(subscriber=organization)
    params = fake.requests_to("post", "checkout/sessions")[0]
    assert params["mode"] == "subscription" and params["customer"] == customer.id
    assert params["line_items[0][price]"] == stripe_prices["fablab_professional_monthly"]["id"]
    assert params["line_items[0][quantity]"] == "1"
    assert params["line_items[1][price]"] == stripe_prices["fablab_professional_scan_overage"]["id"]
    assert "line_items[1][quantity]" not in params  # a metered price takes no quantity
    assert params["subscription_data[metadata][organization]"] == str(organization.pk)
    assert params["success_url"].endswith(reverse("billing:checkout_done"))
    assert not OrganizationPlan.objects.filter(organization=organization).exists()  # Stripe's webhook decides
    subscribe(owner_client, "starter")  # again: the same customer, no duplicate
    assert len(fake.requests_to("post", "customers")) == 1 and Customer.objects.count() == 1


def test_the_success_page_grants_nothing(owner_client, customer_owner):
    response = owner_client.get(reverse("billing:checkout_done"), follow=True)
    assert "as soon as Stripe confirms" in response.content.decode()
    assert not OrganizationPlan.objects.filter(organization=customer_owner.organization).exists()


@pytest.mark.parametrize("plan_key, message", [
    ("free", "not sold through Stripe"),
    ("platinum", "No plan with the key platinum"),
])
def test_a_plan_that_cannot_be_bought_is_refused(owner_client, fake, stripe_prices, plan_key, message):
    page = owner_client.post(reverse("billing:checkout", args=[plan_key]), follow=True)
    assert message in page.content.decode()
    assert fake.calls == []


def test_a_plan_without_its_prices_in_stripe_says_so(owner_client, fake):
    page = owner_client.post(reverse("billing:checkout", args=["starter"]), follow=True)
    assert "not set up in Stripe yet" in page.content.decode() and "billing_sync_plans" in page.content.decode()
    assert fake.requests_to("post", "checkout/sessions") == []


def test_stripe_failing_is_a_message_not_a_500(owner_client, customer_owner, fake, stripe_prices):
    fake.fail_next("checkout/sessions", 500)
    page = owner_client.post(reverse("billing:checkout", args=["starter"]), follow=True)
    assert page.status_code == 200 and "Stripe could not open the checkout" in page.content.decode()
    assert not OrganizationPlan.objects.filter(organization=customer_owner.organization).exists()


def test_a_paying_organization_is_sent_to_manage_billing(owner_client, customer_owner, fake, stripe_prices):
    organization = customer_owner.organization
    OrganizationPlan.objects.create(organization=organization, plan=selectors.plan_get(key="starter"),
                                    source="stripe", stripe_subscription_id="sub_1")
    page = owner_client.post(reverse("billing:checkout", args=["business"]), follow=True)
    assert "Manage billing" in page.content.decode()
    assert fake.requests_to("post", "checkout/sessions") == []


def test_only_owners_subscribe_or_manage(client, customer_owner, fake, stripe_prices):
    member = MembershipFactory(organization=customer_owner.organization, role=MembershipRole.MEMBER)
    client.force_login(member.user)
    assert 'action="/billing/subscribe/' not in client.get(reverse("billing:overview")).content.decode()
    assert subscribe(client).status_code == 403
    assert client.post(reverse("billing:manage")).status_code == 403
    assert client.get(reverse("billing:checkout", args=["starter"])).status_code == 405
    assert fake.calls == []


def test_manage_billing_opens_the_customer_portal(owner_client, customer_owner, fake, stripe_prices):
    html = owner_client.get(reverse("billing:overview")).content.decode()
    assert 'action="/billing/subscribe/starter/"' in html and 'data-testid="manage-billing"' not in html
    page = owner_client.post(reverse("billing:manage"), follow=True)
    assert "subscribe to a plan first" in page.content.decode()
    subscribe(owner_client)
    assert 'data-testid="manage-billing"' in owner_client.get(reverse("billing:overview")).content.decode()
    response = owner_client.post(reverse("billing:manage"))
    assert response.status_code == 302 and response["Location"].startswith("https://billing.stripe.com/p/session/")
    params = fake.requests_to("post", "billing_portal/sessions")[0]
    assert params["customer"] == Customer.objects.get().id and params["return_url"].endswith("/billing/")


# --- Past invoices (dj-stripe's Invoice rows, as Stripe's invoice events leave them) -------------------------


def store_invoice(data: dict):
    """dj-stripe's Invoice row for an invoice in Stripe's shape (as stripe-python hands it over)."""
    import stripe
    from djstripe.models import Invoice

    return Invoice.sync_from_stripe_data(stripe.Invoice.construct_from(data, "sk_test_fake"))


def test_owners_see_past_invoices_with_stripes_hosted_links(owner_client, customer_owner, fake):
    from billing import stripe_gateway
    from billing.tests import fake_stripe
    from fablab.tests.factories import OrganizationFactory

    organization = customer_owner.organization
    customer = stripe_gateway.customer_get_or_create(organization=organization)
    older = fake_stripe.invoice(fake, customer_id=customer.id, number="FAB-0001", total=2900, created=1_760_000_000)
    newer = fake_stripe.invoice(fake, customer_id=customer.id, number="FAB-0002", total=9960, status="open",
                                created=1_762_600_000)
    draft = fake_stripe.invoice(fake, customer_id=customer.id, status="draft")
    stranger = stripe_gateway.customer_get_or_create(organization=OrganizationFactory())
    foreign = fake_stripe.invoice(fake, customer_id=stranger.id, number="OTHER-0001")
    for data in (older, newer, draft, foreign):
        store_invoice(data)

    rows = selectors.invoice_list(organization=organization)
    assert [(r.number, r.total, r.currency, r.status) for r in rows] == [
        ("FAB-0002", Decimal("99.60"), "GBP", "open"), ("FAB-0001", Decimal("29.00"), "GBP", "paid")]
    html = owner_client.get(reverse("billing:overview")).content.decode()
    assert 'data-testid="invoices"' in html
    assert f'href="https://invoice.stripe.com/i/acct_fablab/{older["id"]}"' in html
    assert "99.60 GBP" in html and "FAB-0001" in html
    assert "OTHER-0001" not in html and draft["id"] not in html
    assert html.index("FAB-0002") < html.index("FAB-0001")


def test_members_see_no_invoices_and_without_stripe_there_are_none(client, customer_owner, fake):
    from billing import stripe_gateway
    from billing.tests import fake_stripe

    organization = customer_owner.organization
    assert selectors.invoice_list(organization=organization) == []  # no Stripe customer yet
    customer = stripe_gateway.customer_get_or_create(organization=organization)
    store_invoice(fake_stripe.invoice(fake, customer_id=customer.id, number="FAB-0001"))
    member = MembershipFactory(organization=organization, role=MembershipRole.MEMBER)
    client.force_login(member.user)
    html = client.get(reverse("billing:overview")).content.decode()
    assert 'data-testid="invoices"' not in html and "FAB-0001" not in html
    client.force_login(customer_owner.user)
    assert "FAB-0001" in client.get(reverse("billing:overview")).content.decode()

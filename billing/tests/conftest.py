import hashlib
import hmac
import json
import time
import uuid

import pytest
import stripe

from billing import selectors
from billing.tests import fake_stripe
from fablab.tests.factories import OrganizationFactory

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def fake(monkeypatch, settings):
    """Stripe for the test: stripe-python's HTTP client answers from memory (billing/tests/fake_stripe.py)."""
    settings.STRIPE_SECRET_KEY = settings.STRIPE_TEST_SECRET_KEY = "sk_test_" + "0" * 24
    settings.STRIPE_LIVE_MODE = False
    client = fake_stripe.FakeStripe()
    monkeypatch.setattr(stripe, "default_http_client", client)
    return client


@pytest.fixture
def stripe_prices(fake, db):
    """Each paid plan's product, monthly price and metered overage price in the fake, by lookup key."""
    prices = {}
    for plan in selectors.plan_list().exclude(stripe_lookup_key=""):
        product = fake_stripe.product(fake, name=plan.name, key=plan.key)
        prices[plan.stripe_lookup_key] = fake_stripe.price(
            fake, product_id=product["id"], lookup_key=plan.stripe_lookup_key,
            unit_amount=int(plan.price_per_month * 100))
        if plan.stripe_overage_lookup_key:
            prices[plan.stripe_overage_lookup_key] = fake_stripe.price(
                fake, product_id=product["id"], lookup_key=plan.stripe_overage_lookup_key, unit_amount=60,
                metered=True, meter="mtr_fake_scans")
    return prices


@pytest.fixture
def endpoint(db):
    from djstripe.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        id="we_test", url="https://fablab.example/stripe/webhook/", secret=WEBHOOK_SECRET, livemode=False,
        enabled_events=["*"], status="enabled", api_version=fake_stripe.API_VERSION, djstripe_uuid=uuid.uuid4(),
    )


def sign(body: bytes, secret: str = WEBHOOK_SECRET, *, at: int | None = None) -> str:
    """Stripe's signature scheme: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<body>")."""
    timestamp = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.fixture
def deliver(client, endpoint):
    """Post an event to dj-stripe's webhook endpoint, signed as Stripe signs it; returns the response."""

    def send(event: dict):
        body = json.dumps(event).encode()
        return client.post(f"/stripe/webhook/{endpoint.djstripe_uuid}/", body, content_type="application/json",
                           headers={"Stripe-Signature": sign(body)})

    return send

"""Stripe's webhooks reach dj-stripe's endpoint, which checks the signature (t=…,v1=HMAC-SHA256) first."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from billing.models import OrganizationPlan

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


@pytest.fixture
def endpoint():
    return WebhookEndpoint.objects.create(
        id="we_test", url="https://fablab.example/stripe/webhook/", secret=SECRET, livemode=False,
        enabled_events=["*"], status="enabled", api_version="2025-03-31.basil", djstripe_uuid=uuid.uuid4(),
    )


def signed(body: bytes, secret: str = SECRET, *, at: int | None = None) -> str:
    timestamp = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_id="evt_1", kind="balance.available") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "type": kind, "livemode": False, "api_version": "2025-03-31.basil",
        "created": int(time.time()), "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"object": "balance", "available": [], "pending": [], "livemode": False}},
    }).encode()


def post(client, endpoint, body: bytes, signature: str | None):
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return client.post(f"/stripe/webhook/{endpoint.djstripe_uuid}/", body, content_type="application/json",
                       headers=headers)


@pytest.mark.parametrize("signature", [
    None,
    "t=1,v1=deadbeef",
    "forged",
])
def test_a_missing_or_forged_signature_is_400_and_changes_nothing(client, endpoint, signature):
    response = post(client, endpoint, event(), signature)
    assert response.status_code == 400
    assert not Event.objects.exists() and not OrganizationPlan.objects.exists()
    assert not WebhookEventTrigger.objects.filter(valid=True).exists()


def test_a_signature_made_with_another_secret_or_too_old_is_refused(client, endpoint):
    body = event()
    assert post(client, endpoint, body, signed(body, "whsec_other")).status_code == 400
    assert post(client, endpoint, body, signed(body, at=int(time.time()) - 3600)).status_code == 400
    assert not Event.objects.exists()


import pytest
from django.urls import reverse

from billing import services
from billing.choices import SCANS
from billing.tests.factories import on_plan

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

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from billing import services
from billing.choices import SCANS
from billing.tests.factories import on_plan
from fablab.tests.helpers import ApiClient, assert_problem

pytestmark = pytest.mark.django_db


def test_usage_of_the_keys_organization(api, partner, other_partner):
    on_plan(partner, "starter")
    services.usage_consume(organization=partner, feature=SCANS, key="a")
    services.usage_consume(organization=other_partner, feature=SCANS, key="b")
    body = api.get("/api/v1/billing/usage").json()
    assert set(body) == {"plan", "period_start", "period_end", "month", "day", "overage_units"}
    assert body["plan"] == "starter"
    assert body["month"] == {"used": 1, "limit": 50}
    assert set(body["day"]) == {"used", "limit", "resets_at"}
    assert (body["day"]["used"], body["day"]["limit"]) == (1, 5)
    assert body["overage_units"] == 0
    start, end, resets = (datetime.fromisoformat(body["period_start"]), datetime.fromisoformat(body["period_end"]),
                          datetime.fromisoformat(body["day"]["resets_at"]))
    assert start <= timezone.now() < end and timezone.now() < resets <= timezone.now() + timedelta(days=1)


def test_unlimited_is_null_and_free_is_the_default(api, partner):
    assert api.get("/api/v1/billing/usage").json()["plan"] == "free"
    on_plan(partner, "business")
    assert api.get("/api/v1/billing/usage").json()["day"]["limit"] is None


def test_usage_needs_a_key():
    assert_problem(ApiClient().get("/api/v1/billing/usage"), 401)
    assert_problem(ApiClient("fl_nope_nope").get("/api/v1/billing/usage"), 401)

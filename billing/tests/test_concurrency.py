"""Concurrent uses of one allowance never overshoot it (conditional UPDATE, PostgreSQL)."""


import pytest
from django.db import connection

from billing import selectors, services
from billing.choices import SCANS
from billing.models import UsageLedger
from billing.tests.factories import on_plan
from fablab.exceptions import TooManyRequests
from fablab.tests.factories import OrganizationFactory
from fablab.tests.helpers import run_in_threads

pytestmark = [
    # The default plans come back after the flush at the end (billing's post_migrate receiver).
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="concurrent transactions need PostgreSQL (SQLite runs one writer at a time)"),
]


def test_thirty_concurrent_uses_at_a_daily_limit_of_five_take_exactly_five():
    org = OrganizationFactory()
    on_plan(org, "starter")  # 5 scans a day
    results, errors = run_in_threads(
        30, lambda n: services.usage_consume(organization=org, feature=SCANS, key=f"conc-{n}"))
    assert len(results) == 5
    assert len(errors) == 25 and all(isinstance(e, TooManyRequests) for e in errors), errors
    assert selectors.usage_summary(organization=org)["day"]["used"] == 5
    assert UsageLedger.objects.filter(organization=org).count() == 5


def test_the_same_key_thirty_times_at_once_counts_once():
    org = OrganizationFactory()
    on_plan(org, "business")
    results, errors = run_in_threads(
        30, lambda n: services.usage_consume(organization=org, feature=SCANS, key="same").pk)
    assert errors == [] and len(set(results)) == 1
    assert selectors.usage_summary(organization=org)["month"]["used"] == 1

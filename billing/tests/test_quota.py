"""Units of usage: daily and monthly limits, overage, refunds, periods and time zones."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing import selectors, services
from billing.choices import SCANS, LedgerDirection, PeriodKind
from billing.models import OrganizationPlan, UsageCounter, UsageLedger
from billing.tests.factories import at, on_plan
from fablab.exceptions import Conflict, InvalidInput, PaymentRequired, TooManyRequests

pytestmark = pytest.mark.django_db


def consume(org, key, now):
    return services.usage_consume(organization=org, feature=SCANS, key=key, now=now)


def counters(org):
    return {(c.period_kind, c.period_start): c.used for c in UsageCounter.objects.filter(organization=org)}


def test_the_four_plans_exist_as_rows_with_their_limits():
    table = {p.key: (p.price_per_month, p.currency, [(lim.feature, lim.per_month, lim.per_day, lim.overage_unit_price)
                                                     for lim in p.limits.all()])
             for p in selectors.plan_list()}
    overage = Decimal("0.60")
    assert table == {
        "free": (Decimal("0.00"), "GBP", [("scans", 2, 1, None)]),
        "starter": (Decimal("29.00"), "GBP", [("scans", 50, 5, overage)]),
        "professional": (Decimal("99.00"), "GBP", [("scans", 200, 25, overage)]),
        "business": (Decimal("399.00"), "GBP", [("scans", 1000, None, overage)]),
    }


def test_an_organization_without_a_plan_is_on_free(org, settings):
    settings.TIME_ZONE = "UTC"
    now = at("2025-03-10 09:00")
    entry = consume(org, "a", now)
    assert (entry.plan_key, entry.delta, entry.overage) == ("free", 1, False)
    summary = selectors.usage_summary(organization=org, now=now)
    assert summary["plan"] == "free"
    assert summary["month"] == {"used": 1, "limit": 2}
    assert summary["day"] == {"used": 1, "limit": 1, "resets_at": at("2025-03-11 00:00")}
    assert (summary["period_start"], summary["period_end"]) == (at("2025-03-01 00:00"), at("2025-04-01 00:00"))


def test_daily_limit_is_refused_with_retry_after_and_the_reset_time(org, settings):
    settings.TIME_ZONE = "Europe/London"
    now = at("2025-07-01 22:30", "Europe/London")  # BST: the day ends at 23:00 UTC
    consume(org, "a", now)
    with pytest.raises(TooManyRequests) as refused:
        consume(org, "b", now)
    error = refused.value
    assert error.status == 429
    assert error.headers == {"Retry-After": str(90 * 60 + 1)}
    assert error.extra["resets_at"] == at("2025-07-01 23:00").isoformat()
    assert "a day)" in error.message and "Europe/London" in error.message
    assert UsageLedger.objects.filter(organization=org).count() == 1
    assert counters(org)[(PeriodKind.DAY, at("2025-06-30 23:00"))] == 1  # the refusal left nothing behind
    consume(org, "b", at("2025-07-02 00:05", "Europe/London"))  # the next local day


def test_free_month_used_up_answers_402_with_how_to_upgrade(org, settings):
    settings.TIME_ZONE = "UTC"
    consume(org, "a", at("2025-03-10 09:00"))
    consume(org, "b", at("2025-03-11 09:00"))
    with pytest.raises(PaymentRequired) as refused:
        consume(org, "c", at("2025-03-12 09:00"))
    assert refused.value.status == 402
    assert refused.value.extra["upgrade_url"] == "/billing/"
    assert "Upgrade" in refused.value.message and "/billing/" in refused.value.message
    assert not UsageLedger.objects.filter(key="c").exists()
    assert counters(org).get((PeriodKind.DAY, at("2025-03-12 00:00")), 0) == 0  # the day was undone too
    consume(org, "c", at("2025-04-01 00:00"))  # a new month


def test_paid_plan_beyond_the_month_is_overage(org, settings):
    settings.TIME_ZONE = "UTC"
    on_plan(org, "starter")
    limit = selectors.plan_get(key="starter").limits.get(feature=SCANS)
    limit.per_month, limit.per_day = 2, None
    limit.save()
    entries = [consume(org, f"k{n}", at("2025-03-10 09:00")) for n in range(4)]
    assert [e.overage for e in entries] == [False, False, True, True]
    summary = selectors.usage_summary(organization=org, now=at("2025-03-10 10:00"))
    assert summary["month"] == {"used": 4, "limit": 2} and summary["overage_units"] == 2


def test_the_same_key_counts_once(org, settings):
    settings.TIME_ZONE = "UTC"
    on_plan(org, "starter")
    now = at("2025-03-10 09:00")
    first = consume(org, "scan-1-run-1", now)
    again = consume(org, "scan-1-run-1", now)
    assert first.pk == again.pk
    assert selectors.usage_summary(organization=org, now=now)["day"]["used"] == 1


def test_a_key_of_another_organization_is_refused(org):
    from fablab.tests.factories import OrganizationFactory

    consume(org, "shared", None)
    with pytest.raises(Conflict):
        consume(OrganizationFactory(), "shared", None)
    with pytest.raises(InvalidInput):
        consume(org, "", None)


def test_refund_is_a_new_row_once_and_gives_the_unit_back(org, settings):
    settings.TIME_ZONE = "UTC"
    now = at("2025-03-10 09:00")
    consume(org, "a", now)
    refund = services.usage_refund(organization=org, feature=SCANS, key="a")
    assert (refund.direction, refund.delta) == (LedgerDirection.REFUND, -1)
    assert services.usage_refund(organization=org, feature=SCANS, key="a").pk == refund.pk
    assert UsageLedger.objects.filter(key="a").count() == 2
    assert set(counters(org).values()) == {0}
    assert services.usage_refund(organization=org, feature=SCANS, key="never-used") is None
    consume(org, "b", now)  # the day's unit is free again


def test_a_refunded_overage_unit_is_not_billed(org, settings):
    settings.TIME_ZONE = "UTC"
    on_plan(org, "starter")
    limit = selectors.plan_get(key="starter").limits.get(feature=SCANS)
    limit.per_month = 1
    limit.save()
    now = at("2025-03-10 09:00")
    consume(org, "a", now)
    assert consume(org, "b", now).overage
    services.usage_refund(organization=org, feature=SCANS, key="b")
    assert selectors.usage_summary(organization=org, now=now)["overage_units"] == 0


def test_month_boundary_follows_the_organizations_time_zone(org, settings):
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in January
    consume(org, "a", at("2025-01-31 11:30"))  # already 1 February in Auckland
    summary = selectors.usage_summary(organization=org, now=at("2025-01-31 11:30"))
    assert summary["period_start"] == at("2025-02-01 00:00", "Pacific/Auckland")
    assert summary["day"]["resets_at"] == at("2025-02-02 00:00", "Pacific/Auckland")
    # 31 January 23:30 in Auckland is another day and another month: both allowances are there.
    consume(org, "b", at("2025-01-31 23:30", "Pacific/Auckland"))


def test_a_stripe_billing_period_is_used_and_rolls_on(org, settings):
    settings.TIME_ZONE = "UTC"
    row = on_plan(org, "starter")
    OrganizationPlan.objects.filter(pk=row.pk).update(
        source="stripe", period_start=at("2025-03-15 12:00"), period_end=at("2025-04-15 12:00"))
    inside = selectors.entitlement_get(organization=org, now=at("2025-04-01 00:00"))
    assert (inside.period_start, inside.period_end) == (at("2025-03-15 12:00"), at("2025-04-15 12:00"))
    later = selectors.entitlement_get(organization=org, now=at("2025-06-20 00:00"))
    assert (later.period_start, later.period_end) == (at("2025-06-15 12:00"), at("2025-07-15 12:00"))


def test_after_the_grace_period_the_organization_is_on_free(org):
    row = on_plan(org, "professional")
    now = at("2025-03-10 09:00")
    OrganizationPlan.objects.filter(pk=row.pk).update(grace_until=now + timedelta(days=1))
    assert selectors.entitlement_get(organization=org, now=now).plan.key == "professional"
    assert selectors.entitlement_get(organization=org, now=now + timedelta(days=2)).plan.key == "free"


def test_the_ledger_is_append_only(org):
    entry = consume(org, "a", None)
    entry.delta = 5
    with pytest.raises(ValidationError):
        entry.save()

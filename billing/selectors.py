"""Every non-trivial read of billing: the plan an organization has now, its periods and its usage."""

import calendar
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from billing.choices import (
    FREE_PLAN,
    OVERAGE_REPORT_DUE,
    SCANS,
    LedgerDirection,
    OverageReportStatus,
    PeriodKind,
    PlanSource,
)
from billing.models import OrganizationPlan, OverageReport, Plan, PlanLimit, UsageCounter, UsageLedger


@dataclass(frozen=True)
class Entitlement:
    """What an organization may use right now."""

    plan: Plan | None
    source: str
    period_start: datetime
    period_end: datetime
    grace_until: datetime | None = None

    def limit(self, feature: str) -> PlanLimit | None:
        if self.plan is None:
            return None
        return next((row for row in self.plan.limits.all() if row.feature == feature), None)


def organization_time_zone(organization) -> ZoneInfo:
    """The organization's own time zone where it has one, else the site's."""
    name = getattr(organization, "time_zone", "") or settings.TIME_ZONE
    return ZoneInfo(str(name))


def day_bounds(*, organization, now: datetime) -> tuple[datetime, datetime]:
    """Start and end of the organization's day around `now`, as UTC datetimes (a DST day has 23 or 25 hours)."""
    zone = organization_time_zone(organization)
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def _add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def calendar_month_bounds(*, organization, now: datetime) -> tuple[datetime, datetime]:
    zone = organization_time_zone(organization)
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), _add_months(start, 1).astimezone(ZoneInfo("UTC"))


def _billing_period(row: OrganizationPlan | None, *, organization, now: datetime) -> tuple[datetime, datetime]:
    """The subscription's billing period around `now`; the calendar month where there is no subscription period.

    When Stripe's renewal has not arrived yet, the period rolls on by whole months from the last one known.
    """
    if row is None or row.period_start is None or row.period_end is None:
        return calendar_month_bounds(organization=organization, now=now)
    if row.period_start <= now < row.period_end:
        return row.period_start, row.period_end
    if now < row.period_start:
        return calendar_month_bounds(organization=organization, now=now)
    months = 0
    while _add_months(row.period_end, months + 1) <= now:
        months += 1
    return _add_months(row.period_end, months), _add_months(row.period_end, months + 1)


def free_plan() -> Plan | None:
    return Plan.objects.prefetch_related("limits").filter(key=FREE_PLAN).first()


def entitlement_get(*, organization, now: datetime | None = None) -> Entitlement:
    """The plan and billing period an organization has at `now`.

    No plan row, or a grace period after a failed payment that has run out: the free plan.
    """
    now = now or timezone.now()
    row = (OrganizationPlan.objects.select_related("plan").prefetch_related("plan__limits")
           .filter(organization=organization).first())
    if row is not None and (row.grace_until is None or now < row.grace_until):
        start, end = _billing_period(row, organization=organization, now=now)
        return Entitlement(plan=row.plan, source=row.source, period_start=start, period_end=end,
                           grace_until=row.grace_until)
    start, end = calendar_month_bounds(organization=organization, now=now)
    return Entitlement(plan=free_plan(), source=PlanSource.DEFAULT, period_start=start, period_end=end)


def plan_list(*, public_only: bool = True) -> QuerySet[Plan]:
    plans = Plan.objects.prefetch_related("limits")
    return plans.filter(is_public=True) if public_only else plans


def plan_get(*, key: str) -> Plan | None:
    return Plan.objects.prefetch_related("limits").filter(key=key).first()


def meter_event_name(feature: str) -> str:
    """The event name of the Stripe billing meter that counts overage units of `feature`."""
    return f"fablab_{feature}"


def stripe_product_id(plan: Plan) -> str:
    """Plans are Stripe products with our own ids, so finding one again needs no search."""
    return f"fablab_plan_{plan.key}"


def overage_units(*, organization, feature: str, period_start: datetime) -> int:
    """Units above the allowance in one billing period, less those given back."""
    total = UsageLedger.objects.filter(organization=organization, feature=feature, month_start=period_start,
                                       overage=True).aggregate(units=Sum("delta"))["units"]
    return max(0, total or 0)


def usage_summary(*, organization, feature: str = SCANS, now: datetime | None = None) -> dict:
    """The organization's plan and its use of one feature this billing period and today."""
    now = now or timezone.now()
    entitlement = entitlement_get(organization=organization, now=now)
    limit = entitlement.limit(feature)
    day_start, day_end = day_bounds(organization=organization, now=now)
    counters = {
        (c.period_kind, c.period_start): c.used
        for c in UsageCounter.objects.filter(
            organization=organization, feature=feature,
            period_start__in=[entitlement.period_start, day_start],
        )
    }
    return {
        "plan": entitlement.plan.key if entitlement.plan else None,
        "plan_name": entitlement.plan.name if entitlement.plan else "",
        "source": entitlement.source,
        "grace_until": entitlement.grace_until,
        "period_start": entitlement.period_start,
        "period_end": entitlement.period_end,
        "month": {"used": counters.get((PeriodKind.MONTH, entitlement.period_start), 0),
                  "limit": limit.per_month if limit else None},
        "day": {"used": counters.get((PeriodKind.DAY, day_start), 0),
                "limit": limit.per_day if limit else None, "resets_at": day_end},
        "overage_units": overage_units(organization=organization, feature=feature,
                                       period_start=entitlement.period_start),
        "overage_unit_price": limit.overage_unit_price if limit else None,
        "currency": entitlement.plan.currency if entitlement.plan else "",
    }


def usage_ledger_list(*, organization, feature: str | None = None) -> QuerySet[UsageLedger]:
    rows = UsageLedger.objects.filter(organization=organization)
    return rows.filter(feature=feature) if feature else rows


def usage_consumed(*, key: str, feature: str) -> UsageLedger | None:
    return UsageLedger.objects.filter(key=key, feature=feature, direction=LedgerDirection.CONSUME).first()


def overage_reports_due(*, now: datetime) -> QuerySet[OverageReport]:
    """Outbox rows the task has to send (or cancel) now, oldest first."""
    return (OverageReport.objects.filter(status__in=OVERAGE_REPORT_DUE, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk"))


def overage_reported_by_customer(*, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
    """Units Stripe's meters should hold per (event name, customer) for usage between `start` and `end`."""
    rows = (OverageReport.objects.filter(status__in=[OverageReportStatus.SENT, OverageReportStatus.WITHDRAWING],
                                         occurred_at__gte=start, occurred_at__lt=end)
            .order_by().values("event_name", "stripe_customer_id").annotate(units=Sum("value")))
    return {(row["event_name"], row["stripe_customer_id"]): row["units"] for row in rows}


def _subscription_monthly_amount(data: dict) -> Decimal | None:
    """What a Stripe subscription charges per month for its licensed items (metered overage left out), or
    None when it carries no such item. A plan's price changed by billing_sync_plans leaves existing
    subscriptions on their old price, so this, not the plan row, is their share of MRR."""
    total, found = Decimal(0), False
    for item in (data.get("items") or {}).get("data") or []:
        price = item.get("price") or {}
        recurring = price.get("recurring") or {}
        if recurring.get("usage_type") == "metered" or price.get("unit_amount") is None:
            continue
        months = {"month": 1, "year": 12, "week": Decimal(12) / 52, "day": Decimal(12) / 365}.get(
            recurring.get("interval"))
        if months is None:
            continue
        found = True
        amount = Decimal(price["unit_amount"]) * (item.get("quantity") or 1)
        if (price.get("currency") or "").lower() not in ZERO_DECIMAL_CURRENCIES:
            amount /= 100
        total += amount / (Decimal(recurring.get("interval_count") or 1) * Decimal(months))
    return total if found else None


def billing_kpis(*, now: datetime | None = None) -> list[dict]:
    """The dashboard's billing figures: MRR, paying organizations by plan, overage this month, failed payments.

    MRR counts the paying organizations whose plan is on (a grace period after a failed payment still
    counts; one that ran out does not), at what their Stripe subscription charges per month (dj-stripe's
    row), else at the plan's price.
    """
    from django.utils.translation import gettext as _
    from djstripe.models import Subscription

    now = now or timezone.now()
    stripe_rows = OrganizationPlan.objects.filter(source=PlanSource.STRIPE)
    paying = stripe_rows.filter(Q(grace_until__isnull=True) | Q(grace_until__gt=now))
    subscriptions = {sub.id: sub.stripe_data or {} for sub in Subscription.objects.filter(
        id__in=paying.exclude(stripe_subscription_id="").values("stripe_subscription_id"))}
    mrr = Decimal(0)
    for row in paying.select_related("plan"):
        amount = _subscription_monthly_amount(subscriptions.get(row.stripe_subscription_id, {}))
        mrr += row.plan.price_per_month if amount is None else amount
    by_plan = dict(paying.values_list("plan__name").annotate(n=Count("pk")).values_list("plan__name", "n"))
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    overage = UsageLedger.objects.filter(overage=True, created_at__gte=month_start).aggregate(
        units=Sum("delta"))["units"] or 0
    currency = Plan.objects.exclude(price_per_month=0).values_list("currency", flat=True).first() or ""
    figures = [
        {"label": (_("MRR (%(currency)s)") % {"currency": currency}) if currency else _("MRR"),
         "value": mrr.quantize(Decimal("0.01"))},
        {"label": _("Active subscriptions"), "value": sum(by_plan.values())},
    ]
    figures += [{"label": name, "value": n} for name, n in sorted(by_plan.items())]
    figures += [
        {"label": _("Overage units this month"), "value": max(0, overage)},
        {"label": _("Overage reports failed"),
         "value": OverageReport.objects.filter(status=OverageReportStatus.FAILED).count()},
        {"label": _("Failed payments (in grace)"), "value": paying.filter(grace_until__isnull=False).count()},
        {"label": _("Failed payments (fell back to Free)"), "value": stripe_rows.filter(grace_until__lte=now).count()},
        {"label": _("Complimentary plans"), "value": OrganizationPlan.objects.filter(source=PlanSource.COMP).count()},
    ]
    return figures


def stripe_customer_get(*, organization):
    """The organization's Stripe customer (dj-stripe's row) in the configured mode, if it has one."""
    from djstripe.models import Customer

    return Customer.objects.filter(subscriber=organization, livemode=settings.STRIPE_LIVE_MODE).first()


def graces_expired(*, now: datetime) -> QuerySet[OrganizationPlan]:
    """Paid plans whose grace period after a failed payment ran out and whose owners were not told yet."""
    return OrganizationPlan.objects.filter(source=PlanSource.STRIPE, grace_until__lte=now,
                                           grace_ended_at__isnull=True)


def organization_owner_emails(*, organization) -> list[str]:
    from fablab.choices import MembershipRole
    from fablab.models import Membership

    return list(Membership.objects.filter(organization=organization, role=MembershipRole.OWNER,
                                          user__is_active=True).exclude(user__email="")
                .order_by("created_at").values_list("user__email", flat=True))


# Currencies Stripe counts in whole units, not hundredths.
ZERO_DECIMAL_CURRENCIES = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                                     "vnd", "vuv", "xaf", "xof", "xpf"})


@dataclass(frozen=True)
class InvoiceRow:
    """One of the organization's Stripe invoices, as the portal lists it."""

    id: str
    number: str
    created: datetime
    total: Decimal
    currency: str
    status: str
    hosted_invoice_url: str
    invoice_pdf: str


def invoice_list(*, organization, limit: int = 24) -> list[InvoiceRow]:
    """The organization's past invoices (newest first), from the Invoice rows dj-stripe keeps in step with
    Stripe's events; drafts, which Stripe has not finalised and has no page for, are left out."""
    from djstripe.models import Invoice

    customer = stripe_customer_get(organization=organization)
    if customer is None:
        return []
    rows = []
    for invoice in Invoice.objects.filter(customer=customer).order_by("-created")[: limit * 2]:
        data = invoice.stripe_data or {}
        if data.get("status") in ("draft", None) or len(rows) >= limit:
            continue
        currency = (data.get("currency") or "").lower()
        cents = Decimal(int(data.get("total") or 0))
        rows.append(InvoiceRow(
            id=invoice.id, number=data.get("number") or "", created=invoice.created,
            total=cents if currency in ZERO_DECIMAL_CURRENCIES else (cents / 100).quantize(Decimal("0.01")),
            currency=currency.upper(),
            status=data.get("status") or "", hosted_invoice_url=data.get("hosted_invoice_url") or "",
            invoice_pdf=data.get("invoice_pdf") or ""))
    return rows


def organization_of_stripe_customer(*, customer_id: str | None):
    from djstripe.models import Customer

    if not customer_id:
        return None
    customer = Customer.objects.select_related("subscriber").filter(id=customer_id).first()
    return customer.subscriber if customer is not None else None


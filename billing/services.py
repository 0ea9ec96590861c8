"""Every write of billing: plans granted, units of usage consumed and given back.

Quota rules (README, "Billing"):
- one unit per use, counted against a day counter (the organization's day) and a billing-period counter;
- the day's limit is a hard stop for every plan (429, retry when the day resets);
- the period's allowance is a hard stop on a plan without overage (402: upgrade), and on a plan with
  overage the unit is accepted and flagged as overage (billed per unit);
- each counter moves with a conditional UPDATE (`... WHERE used < limit`), so concurrent requests
  never take more than the limit; the ledger row written in the same transaction has a unique key,
  so a retried request counts once.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from billing import selectors
from billing.choices import SCANS, LedgerDirection, PeriodKind, PlanSource
from billing.models import OrganizationPlan, Plan, UsageCounter, UsageLedger
from fablab.exceptions import Conflict, InvalidInput, NotFound, PaymentRequired, TooManyRequests
from fablab.validation import validate

logger = logging.getLogger(__name__)


def feature_label(feature: str) -> str:
    return {SCANS: _("scans")}.get(feature, feature)


def _counter(*, organization, feature: str, kind: str, start: datetime, end: datetime) -> int:
    """The id of the counter of one period, created when it is the period's first use (race-free)."""
    UsageCounter.objects.bulk_create(
        [UsageCounter(organization=organization, feature=feature, period_kind=kind, period_start=start,
                      period_end=end)],
        ignore_conflicts=True,
    )
    return UsageCounter.objects.values_list("pk", flat=True).get(
        organization=organization, feature=feature, period_kind=kind, period_start=start)


def _take(counter_id: int, limit: int | None) -> bool:
    """Add one unit unless the counter is at `limit` (None: no limit). One conditional UPDATE: never overshoots."""
    rows = UsageCounter.objects.filter(pk=counter_id)
    if limit is not None:
        rows = rows.filter(used__lt=limit)
    return rows.update(used=F("used") + 1, limit=limit) == 1


def _local(moment: datetime, organization) -> str:
    return formats.date_format(moment.astimezone(selectors.organization_time_zone(organization)), "DATETIME_FORMAT")


def _day_refusal(*, organization, entitlement, feature, per_day, day_end, now) -> TooManyRequests:
    wait = max(1, int((day_end - now).total_seconds()) + 1)
    zone = selectors.organization_time_zone(organization)
    message = _(
        "Today's allowance of %(feature)s on the %(plan)s plan (%(limit)s a day) is used up. It resets at "
        "%(time)s (%(zone)s); retry then."
    ) % {"plan": entitlement.plan.name, "limit": per_day, "feature": feature_label(feature),
         "time": _local(day_end, organization), "zone": zone.key}
    return TooManyRequests(message, extra={"plan": entitlement.plan.key, "limit": per_day,
                                           "resets_at": day_end.isoformat(), "retry_after": wait},
                           headers={"Retry-After": str(wait)})


def _month_refusal(*, organization, entitlement, feature, per_month) -> PaymentRequired:
    url = reverse("billing:overview")
    if entitlement.plan is None:
        message = _("No plan allows %(feature)s at the moment; choose a plan on the billing page (%(url)s).") % {
            "feature": feature_label(feature), "url": url}
        return PaymentRequired(message, extra={"upgrade_url": url})
    message = _(
        "This billing period's allowance of %(feature)s on the %(plan)s plan (%(limit)s) is used up. Upgrade to "
        "a paid plan on the billing page (%(url)s) to continue now; the allowance renews at %(time)s."
    ) % {"plan": entitlement.plan.name, "limit": per_month, "feature": feature_label(feature), "url": url,
         "time": _local(entitlement.period_end, organization)}
    return PaymentRequired(message, extra={"plan": entitlement.plan.key, "limit": per_month,
                                           "resets_at": entitlement.period_end.isoformat(), "upgrade_url": url})


@transaction.atomic
def usage_consume(*, organization, feature: str, key: str, now: datetime | None = None) -> UsageLedger:
    """Use one unit of `feature` for `key`, in the caller's transaction; the same key again uses nothing.

    Raises TooManyRequests (429) when the day's limit is reached and PaymentRequired (402) when the
    billing period's allowance is used up on a plan without overage; a unit above the allowance of a
    plan with overage is accepted and its ledger row is flagged `overage`.
    """
    if not key:
        raise InvalidInput(_("A usage key is required."))
    existing = selectors.usage_consumed(key=key, feature=feature)
    if existing is not None:
        if existing.organization_id != organization.pk:
            raise Conflict(_("This usage key belongs to another organization."))
        return existing
    now = now or timezone.now()
    entitlement = selectors.entitlement_get(organization=organization, now=now)
    if entitlement.plan is None:
        raise _month_refusal(organization=organization, entitlement=entitlement, feature=feature, per_month=0)
    limit = entitlement.limit(feature)
    per_day = limit.per_day if limit else None
    per_month = limit.per_month if limit else None
    day_start, day_end = selectors.day_bounds(organization=organization, now=now)
    try:
        with transaction.atomic():  # a refusal or a concurrent use of the same key undoes the counters
            day = _counter(organization=organization, feature=feature, kind=PeriodKind.DAY, start=day_start,
                           end=day_end)
            month = _counter(organization=organization, feature=feature, kind=PeriodKind.MONTH,
                             start=entitlement.period_start, end=entitlement.period_end)
            if not _take(day, per_day):
                raise _day_refusal(organization=organization, entitlement=entitlement, feature=feature,
                                   per_day=per_day, day_end=day_end, now=now)
            overage = False
            if not _take(month, per_month):
                if limit is None or not limit.allows_overage:
                    raise _month_refusal(organization=organization, entitlement=entitlement, feature=feature,
                                         per_month=per_month)
                _take(month, None)
                overage = True
            entry = UsageLedger.objects.create(
                organization=organization, feature=feature, key=key, direction=LedgerDirection.CONSUME, delta=1,
                overage=overage, plan_key=entitlement.plan.key, month_start=entitlement.period_start,
                day_start=day_start,
            )
    except IntegrityError:
        existing = selectors.usage_consumed(key=key, feature=feature)
        if existing is None:
            raise
        return existing
    return entry


@transaction.atomic
def usage_refund(*, organization, feature: str, key: str) -> UsageLedger | None:
    """Give back the unit `key` used: a new ledger row, the counters of its periods one lower.

    Giving back twice changes nothing; a key that used nothing returns None. A refunded overage unit
    is not billed.
    """
    consumed = selectors.usage_consumed(key=key, feature=feature)
    if consumed is None or consumed.organization_id != organization.pk:
        return None
    refunded = UsageLedger.objects.filter(key=key, feature=feature, direction=LedgerDirection.REFUND).first()
    if refunded is not None:
        return refunded
    try:
        with transaction.atomic():
            entry = UsageLedger.objects.create(
                organization=organization, feature=feature, key=key, direction=LedgerDirection.REFUND, delta=-1,
                overage=consumed.overage, plan_key=consumed.plan_key, month_start=consumed.month_start,
                day_start=consumed.day_start,
            )
            for kind, start in ((PeriodKind.DAY, consumed.day_start), (PeriodKind.MONTH, consumed.month_start)):
                UsageCounter.objects.filter(organization=organization, feature=feature, period_kind=kind,
                                            period_start=start, used__gt=0).update(used=F("used") - 1)
    except IntegrityError:
        return UsageLedger.objects.get(key=key, feature=feature, direction=LedgerDirection.REFUND)
    return entry


# --- Plans ----------------------------------------------------------------------------


@transaction.atomic
def plan_grant(*, organization, plan: Plan, by=None, note: str = "") -> OrganizationPlan:
    """Give an organization a plan without Stripe (partners, support): a comp, on calendar months.

    Refused while the organization pays through Stripe: cancel that subscription first.
    """
    row = OrganizationPlan.objects.select_for_update().filter(organization=organization).first()
    if row is not None and row.source == PlanSource.STRIPE and row.stripe_subscription_id:
        raise Conflict(_("%(org)s pays for its plan through Stripe; cancel the subscription before giving a "
                         "complimentary plan.") % {"org": organization})
    row = row or OrganizationPlan(organization=organization)
    row.plan, row.source, row.note, row.granted_by = plan, PlanSource.COMP, note[:255], by
    row.period_start = row.period_end = row.grace_until = None
    row.stripe_subscription_id = ""
    validate(row)
    row.save()
    logger.info("plan %s granted to %s", plan.key, organization.slug)
    return row


def plan_grant_by_key(*, organization_slug: str, plan_key: str, by=None, note: str = "") -> OrganizationPlan:
    from fablab.models import Organization

    organization = Organization.objects.filter(slug=organization_slug).first()
    if organization is None:
        raise NotFound(_("No organization with the slug %(slug)s.") % {"slug": organization_slug})
    plan = selectors.plan_get(key=plan_key)
    if plan is None:
        keys = ", ".join(selectors.plan_list(public_only=False).values_list("key", flat=True))
        raise NotFound(_("No plan with the key %(key)s (there are: %(keys)s).") % {"key": plan_key, "keys": keys})
    return plan_grant(organization=organization, plan=plan, by=by, note=note)


@transaction.atomic
def plan_revoke_comp(*, organization) -> None:
    """End a complimentary plan: the organization is on Free again."""
    OrganizationPlan.objects.filter(organization=organization, source=PlanSource.COMP).delete()

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
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from billing import selectors
from billing.choices import OVERAGE_REPORT_DUE, SCANS, LedgerDirection, OverageReportStatus, PeriodKind, PlanSource
from billing.models import OrganizationPlan, OverageReport, Plan, UsageCounter, UsageLedger
from fablab.choices import AuditAction
from fablab.exceptions import Conflict, InvalidInput, NotFound, PaymentRequired, TooManyRequests
from fablab.services import audit_record
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
            if overage and entitlement.source == PlanSource.STRIPE:
                _overage_report_create(entry=entry, now=now)
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
            if consumed.overage:
                _overage_report_withdraw(ledger=consumed)
    except IntegrityError:
        return UsageLedger.objects.get(key=key, feature=feature, direction=LedgerDirection.REFUND)
    return entry


# --- The overage outbox: each overage unit reported to Stripe's billing meter once -------------------------
#
# A row is written with the overage unit (same transaction) and sent by billing.tasks.report_overage. While
# a row is being sent it is locked (SELECT ... FOR UPDATE SKIP LOCKED), so two runs of the task never send
# the same row at once and a refund waits for the send to finish; the identifier is the usage key, so a
# send whose answer was lost (a timeout) and is retried is refused by Stripe as a duplicate, which counts as
# reported. Transient failures retry with exponential backoff; a refusal or the last attempt failing leaves
# the row failed, for staff (admin → Billing → Overage outbox; the "Retry" action).

OVERAGE_RETRY_BASE_SECONDS = 60
OVERAGE_RETRY_MAX_SECONDS = 6 * 3600


def _overage_report_create(*, entry: UsageLedger, now: datetime) -> OverageReport:
    return OverageReport.objects.create(
        organization_id=entry.organization_id, ledger=entry, feature=entry.feature,
        event_name=selectors.meter_event_name(entry.feature), identifier=entry.key[:100], value=1,
        occurred_at=now, status=OverageReportStatus.PENDING, next_attempt_at=now)


def _overage_report_withdraw(*, ledger: UsageLedger) -> None:
    """A unit given back: not reported if it was not yet, cancelled at Stripe if it was."""
    row = OverageReport.objects.select_for_update().filter(ledger=ledger).first()
    if row is None:
        return
    if row.status in (OverageReportStatus.PENDING, OverageReportStatus.FAILED):
        row.status, row.next_attempt_at = OverageReportStatus.CANCELLED, None
    elif row.status == OverageReportStatus.SENT:
        row.status, row.next_attempt_at, row.attempts = OverageReportStatus.WITHDRAWING, timezone.now(), 0
    else:
        return
    row.save(update_fields=["status", "next_attempt_at", "attempts", "updated_at"])


def _overage_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(OVERAGE_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1), OVERAGE_RETRY_MAX_SECONDS))


def _overage_report_send(*, pk: int, now: datetime) -> str:
    """Send one due row (or its cancellation); returns what became of it. Safe to run twice."""
    from django.conf import settings

    from billing import stripe_gateway

    with transaction.atomic():
        row = (OverageReport.objects.select_for_update(skip_locked=True)
               .filter(pk=pk, status__in=OVERAGE_REPORT_DUE, next_attempt_at__lte=now).first())
        if row is None:
            return "skipped"  # done meanwhile, given back, or another run holds it
        withdrawing = row.status == OverageReportStatus.WITHDRAWING
        row.attempts += 1
        try:
            if withdrawing:
                stripe_gateway.meter_event_cancel(event_name=row.event_name, identifier=row.identifier)
            else:
                customer = selectors.stripe_customer_get(organization=row.organization)
                if customer is None:
                    raise stripe_gateway.MeterEventRefused(_("The organization has no Stripe customer."))
                row.stripe_customer_id = customer.id
                stripe_gateway.meter_event_create(event_name=row.event_name, customer_id=customer.id,
                                                  identifier=row.identifier, value=row.value,
                                                  timestamp=row.occurred_at)
        except stripe_gateway.MeterEventRefused as exc:
            row.status, row.next_attempt_at, row.last_error = OverageReportStatus.FAILED, None, exc.message
            outcome = "failed"
        except stripe_gateway.StripeUnavailable as exc:
            row.last_error = exc.message
            if row.attempts >= settings.BILLING_METER_MAX_ATTEMPTS:
                row.status, row.next_attempt_at = OverageReportStatus.FAILED, None
                outcome = "failed"
            else:
                row.next_attempt_at = now + _overage_backoff(row.attempts)
                outcome = "retry"
        else:
            row.status = OverageReportStatus.WITHDRAWN if withdrawing else OverageReportStatus.SENT
            row.next_attempt_at, row.last_error = None, ""
            if not withdrawing:
                row.sent_at = now
            outcome = "withdrawn" if withdrawing else "sent"
        row.save()
    if outcome == "failed":
        logger.error("overage report %s failed for good: %s", row.identifier, row.last_error)
    return outcome


def overage_reports_send(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Report every due outbox row to Stripe (oldest first); returns how many rows ended how."""
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    for pk in selectors.overage_reports_due(now=now).values_list("pk", flat=True)[:batch]:
        outcome = _overage_report_send(pk=pk, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@transaction.atomic
def overage_report_retry(*, report: OverageReport) -> OverageReport:
    """Staff: send a failed row again at the next run of the task, with a fresh set of attempts."""
    row = OverageReport.objects.select_for_update().get(pk=report.pk)
    if row.status != OverageReportStatus.FAILED:
        raise Conflict(_("Only a failed report can be retried (%(id)s is %(status)s).") % {
            "id": row.identifier, "status": row.get_status_display()})
    refunded = UsageLedger.objects.filter(key=row.ledger.key, feature=row.feature,
                                          direction=LedgerDirection.REFUND).exists()
    row.status = OverageReportStatus.CANCELLED if refunded else OverageReportStatus.PENDING
    row.attempts, row.next_attempt_at = 0, None if refunded else timezone.now()
    row.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return row


def overage_reconcile(*, now: datetime | None = None, days: int = 3) -> list[dict]:
    """Compare what the outbox reported with what Stripe's meter counted, per customer, over the last `days`.

    The window ends on a whole minute ten minutes ago (Stripe aggregates meter events asynchronously) and
    covers the rows reported, plus those whose cancellation is still on its way. Returns the differences
    (empty: all agree) and logs each as an error.
    """
    from billing import stripe_gateway

    now = now or timezone.now()
    end = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    expected = selectors.overage_reported_by_customer(start=start, end=end)
    differences, meters = [], {}
    for (event_name, customer_id), units in sorted(expected.items()):
        if event_name not in meters:
            meters[event_name] = stripe_gateway.meter_find(event_name=event_name)
        meter = meters[event_name]
        counted = (stripe_gateway.meter_usage_total(meter_id=meter.id, customer_id=customer_id, start=start,
                                                    end=end) if meter is not None else 0)
        if counted != units:
            differences.append({"event_name": event_name, "customer": customer_id, "outbox": units,
                                "stripe": counted, "start": start.isoformat(), "end": end.isoformat()})
            logger.error("overage reconciliation: %s for %s: outbox %s, Stripe %s (%s to %s)", event_name,
                         customer_id, units, counted, start.isoformat(), end.isoformat())
    return differences


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
    row.period_start = row.period_end = row.grace_until = row.grace_ended_at = None
    row.stripe_subscription_id = ""
    validate(row)
    row.save()
    audit_record(action=AuditAction.PLAN_CHANGED, organization=organization, target=plan, actor=by,
                 extra={"plan": plan.key, "source": PlanSource.COMP, "note": row.note})
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
    deleted, _counts = OrganizationPlan.objects.filter(organization=organization, source=PlanSource.COMP).delete()
    if deleted:
        free = selectors.free_plan()
        audit_record(action=AuditAction.PLAN_CHANGED, organization=organization, target=free, target_type="plan",
                     extra={"plan": free.key if free else "", "source": PlanSource.DEFAULT})


def organization_billing_close(*, organization) -> bool:
    """End what an organization pays for before it is deleted: its Stripe subscription is cancelled now.

    A Stripe that cannot be reached raises StripeUnavailable, which refuses the deletion (nothing is
    deleted, the owner tries again). Its invoices stay in Stripe and in dj-stripe's tables, no longer
    linked to the organization. Returns whether a subscription was cancelled.
    """
    from billing import stripe_gateway

    row = (OrganizationPlan.objects.filter(organization=organization, source=PlanSource.STRIPE)
           .exclude(stripe_subscription_id="").select_related("plan").first())
    if row is None:
        return False
    cancelled = stripe_gateway.subscription_cancel(subscription_id=row.stripe_subscription_id)
    audit_record(action=AuditAction.PLAN_CHANGED, organization=organization, target=row.plan, target_type="plan",
                 extra={"plan": row.plan.key, "source": PlanSource.STRIPE, "cancelled": row.stripe_subscription_id,
                        "reason": "organization deleted"})
    logger.info("subscription %s of %s cancelled: the organization is being deleted", row.stripe_subscription_id,
                organization.slug)
    return cancelled


# --- Stripe: checkout, the customer portal, and what Stripe's webhooks say -------------------------------
#
# Entitlements change only here, from Stripe's events (the success page grants nothing). Events may come
# twice (dj-stripe stores each event once and runs the handlers once) and in any order: each row remembers
# when the last subscription event and the last payment event it applied were created, and an older one
# arriving later changes nothing.

ENTITLED_STATUSES = frozenset({"active", "trialing", "past_due"})  # past_due: the grace period decides
ENDED_STATUSES = frozenset({"canceled", "unpaid", "incomplete_expired", "paused"})


def subscription_checkout_start(*, organization, plan_key: str, success_url: str, cancel_url: str) -> str:
    """Open a Stripe Checkout Session for `plan_key` and return its URL.

    The organization's Stripe customer is created first and passed in, so Checkout never makes an
    unlinked duplicate. The session holds the plan's monthly price and its metered overage price.
    """
    from billing import stripe_gateway

    plan = selectors.plan_get(key=plan_key)
    if plan is None or not plan.is_public:
        raise NotFound(_("No plan with the key %(key)s.") % {"key": plan_key})
    if plan.is_free or not plan.stripe_lookup_key:
        raise InvalidInput(_("The %(plan)s plan is not sold through Stripe.") % {"plan": plan.name})
    current = OrganizationPlan.objects.filter(organization=organization, source=PlanSource.STRIPE).first()
    if current is not None:
        raise Conflict(_("%(org)s already pays for a plan; change it under \"Manage billing\".") % {
            "org": organization})
    keys = [k for k in (plan.stripe_lookup_key, plan.stripe_overage_lookup_key) if k]
    customer = stripe_gateway.customer_get_or_create(organization=organization)
    prices = stripe_gateway.prices_by_lookup_key(keys)
    missing = [k for k in keys if k not in prices]
    if missing:
        raise Conflict(_("The %(plan)s plan is not set up in Stripe yet (no price %(keys)s); staff run "
                         "billing_sync_plans.") % {"plan": plan.name, "keys": ", ".join(missing)})
    line_items = [{"price": prices[plan.stripe_lookup_key].id, "quantity": 1}]
    if plan.stripe_overage_lookup_key:
        line_items.append({"price": prices[plan.stripe_overage_lookup_key].id})  # metered: no quantity
    session = stripe_gateway.checkout_session_create(
        customer_id=customer.id, line_items=line_items, success_url=success_url, cancel_url=cancel_url,
        organization_id=organization.pk, plan_key=plan.key)
    logger.info("checkout %s opened for %s (%s)", session.id, organization.slug, plan.key)
    return session.url


def billing_portal_start(*, organization, return_url: str) -> str:
    """Open Stripe's Customer Portal (card, cancel, invoices) for the organization and return its URL."""
    from billing import stripe_gateway

    customer = selectors.stripe_customer_get(organization=organization)
    if customer is None:
        raise NotFound(_("%(org)s has no Stripe account yet: subscribe to a plan first.") % {"org": organization})
    return stripe_gateway.billing_portal_session_create(customer_id=customer.id, return_url=return_url).url


def _from_timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _subscription_period(subscription: dict) -> tuple[datetime | None, datetime | None]:
    """The billing period, read from the subscription's items (Stripe moved it there in API 2025-03-31;
    dj-stripe 2.11's `Subscription.current_period_end` still reads the subscription and finds nothing)."""
    items = (subscription.get("items") or {}).get("data") or []
    starts = [i["current_period_start"] for i in items if i.get("current_period_start")]
    ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
    if not starts or not ends:  # an older API version: the subscription still carries it
        return (_from_timestamp(subscription.get("current_period_start")),
                _from_timestamp(subscription.get("current_period_end")))
    return _from_timestamp(min(starts)), _from_timestamp(min(ends))


def _subscription_plan(subscription: dict) -> Plan | None:
    keys = [((item.get("price") or {}).get("lookup_key") or "") for item in
            (subscription.get("items") or {}).get("data") or []]
    return Plan.objects.filter(stripe_lookup_key__in=[k for k in keys if k]).first()


def _organization_of(*, customer_id: str | None, metadata: dict | None):
    """The organization a Stripe customer belongs to (dj-stripe's customer row), else the metadata's."""
    from fablab.models import Organization

    organization = selectors.organization_of_stripe_customer(customer_id=customer_id)
    if organization is None and (metadata or {}).get("organization", "").isdigit():
        organization = Organization.objects.filter(pk=int(metadata["organization"])).first()
    return organization


@transaction.atomic
def subscription_apply(*, subscription: dict, event_created: datetime) -> OrganizationPlan | None:
    """Make the organization's plan what a Stripe subscription says, unless a newer event was applied already.

    Active (or trialing, or past due while the grace period runs): the plan whose monthly price has the
    subscription's lookup key, for the items' billing period. Cancelled, unpaid or expired: Free.
    """
    organization = _organization_of(customer_id=_id(subscription.get("customer")),
                                    metadata=subscription.get("metadata"))
    if organization is None:
        logger.warning("subscription %s: no organization for customer %s", subscription.get("id"),
                       subscription.get("customer"))
        return None
    row = OrganizationPlan.objects.select_for_update().filter(organization=organization).first()
    if row is not None and row.stripe_event_at and event_created < row.stripe_event_at:
        logger.info("subscription %s: event of %s is older than the one applied; ignored", subscription.get("id"),
                    event_created.isoformat())
        return row
    status = subscription.get("status", "")
    is_current = row is not None and row.stripe_subscription_id == subscription["id"]
    if status in ENDED_STATUSES:
        if not is_current:
            return row  # another subscription (or a comp) holds the plan: an old one ending changes nothing
        row.plan, row.source = selectors.free_plan(), PlanSource.DEFAULT
        row.period_start = row.period_end = row.grace_until = row.grace_ended_at = None
        row.note = _("Stripe subscription %(status)s") % {"status": status}
    elif status in ENTITLED_STATUSES:
        plan = _subscription_plan(subscription)
        if plan is None:
            logger.error("subscription %s: no plan has any of its prices' lookup keys", subscription["id"])
            return row
        row = row or OrganizationPlan(organization=organization)
        if not is_current:
            row.grace_until, row.grace_ended_at, row.payment_event_at = None, None, None
        row.plan, row.source, row.note, row.granted_by = plan, PlanSource.STRIPE, "", None
        row.period_start, row.period_end = _subscription_period(subscription)
        row.stripe_subscription_id = subscription["id"]
    else:
        return row  # incomplete: no entitlement until the first payment succeeds
    plan_changed = row.pk is None or (
        OrganizationPlan.objects.filter(pk=row.pk).exclude(plan=row.plan, source=row.source).exists())
    row.stripe_event_at = event_created
    validate(row)
    row.save()
    if plan_changed:
        audit_record(action=AuditAction.PLAN_CHANGED, organization=organization, target=row.plan,
                     extra={"plan": row.plan.key, "source": row.source, "subscription": subscription["id"],
                            "status": status})
    logger.info("%s: plan %s from Stripe subscription %s (%s)", organization.slug, row.plan.key,
                subscription["id"], status)
    return row


def checkout_completed(*, session: dict, event_created: datetime) -> OrganizationPlan | None:
    """A finished Checkout: apply the subscription it created (read back from Stripe)."""
    from billing import stripe_gateway

    subscription_id = _id(session.get("subscription"))
    if session.get("mode") != "subscription" or not subscription_id:
        return None
    subscription = stripe_gateway.subscription_retrieve(subscription_id=subscription_id)
    return subscription_apply(subscription=subscription.to_dict(), event_created=event_created)


def _invoice_row(invoice: dict) -> OrganizationPlan | None:
    organization = _organization_of(customer_id=_id(invoice.get("customer")), metadata=None)
    if organization is None:
        return None
    return OrganizationPlan.objects.select_for_update().filter(organization=organization,
                                                                source=PlanSource.STRIPE).first()


@transaction.atomic
def invoice_payment_failed(*, invoice: dict, event_created: datetime) -> OrganizationPlan | None:
    """A payment failed: the plan's limits stay for BILLING_GRACE_DAYS, then the organization is on Free.

    A grace period already running is not extended by Stripe's retries.
    """
    from django.conf import settings

    row = _invoice_row(invoice)
    if row is None or (row.payment_event_at and event_created < row.payment_event_at):
        return row
    if row.grace_until is None:
        row.grace_until = event_created + timedelta(days=settings.BILLING_GRACE_DAYS)
        row.grace_ended_at = None
        logger.warning("%s: payment failed, grace until %s", row.organization.slug, row.grace_until.isoformat())
        transaction.on_commit(lambda pk=row.pk: _mail_owners(row_id=pk, template="grace_started"))
    row.payment_event_at = event_created
    row.save(update_fields=["grace_until", "grace_ended_at", "payment_event_at", "updated_at"])
    return row


@transaction.atomic
def invoice_paid(*, invoice: dict, event_created: datetime) -> OrganizationPlan | None:
    """A payment went through: any grace period ends, the plan is fully on."""
    row = _invoice_row(invoice)
    if row is None or (row.payment_event_at and event_created < row.payment_event_at):
        return row
    row.grace_until, row.grace_ended_at, row.payment_event_at = None, None, event_created
    row.save(update_fields=["grace_until", "grace_ended_at", "payment_event_at", "updated_at"])
    return row


def graces_expire(*, now: datetime | None = None) -> int:
    """Find the grace periods that ran out: the organization is on Free now (the entitlement says so by
    itself); record when, once, and tell its owners. A payment arriving later still restores the plan."""
    now = now or timezone.now()
    expired = 0
    for pk in selectors.graces_expired(now=now).values_list("pk", flat=True):
        with transaction.atomic():
            row = (OrganizationPlan.objects.select_for_update()
                   .filter(pk=pk, grace_until__lte=now, grace_ended_at__isnull=True).first())
            if row is None:
                continue
            row.grace_ended_at = now
            row.save(update_fields=["grace_ended_at", "updated_at"])
            transaction.on_commit(lambda pk=row.pk: _mail_owners(row_id=pk, template="fell_back_to_free"))
            expired += 1
            logger.warning("%s: grace period over, on Free now", row.organization.slug)
    return expired


def _mail_owners(*, row_id: int, template: str) -> int:
    """E-mail the organization's owners about its plan (templates/billing/email/<language>/<template>_*.txt),
    in the site's language. Returns how many were sent to."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils import translation

    row = OrganizationPlan.objects.select_related("organization", "plan").filter(pk=row_id).first()
    if row is None:
        return 0
    recipients = selectors.organization_owner_emails(organization=row.organization)
    if not recipients:
        logger.warning("%s: no owner with an e-mail address to tell about %s", row.organization.slug, template)
        return 0
    language = settings.LANGUAGE_CODE
    zone = selectors.organization_time_zone(row.organization)
    context = {"organization": row.organization, "plan": row.plan, "free_plan": selectors.free_plan(),
               "grace_until": row.grace_until.astimezone(zone) if row.grace_until else None, "time_zone": zone.key,
               "billing_url": settings.PORTAL_BASE_URL + reverse("billing:overview")}

    def render(part: str) -> str:
        names = [f"billing/email/{language}/{template}_{part}.txt", f"billing/email/en/{template}_{part}.txt"]
        return render_to_string(names, context)

    with translation.override(language):
        subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(render("subject").split())
        body = render("message")
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    return len(recipients)


def _id(value) -> str | None:
    """A Stripe reference is an id, or the expanded object."""
    return value.get("id") if isinstance(value, dict) else value


# --- Stripe: products and prices from the plan rows -------------------------------------------------------


def _cents(amount) -> int:
    return int((amount * 100).to_integral_value())


def _price_matches(price, *, product_id: str, currency: str, unit_amount: int, meter_id: str | None) -> bool:
    recurring = price.get("recurring") or {}
    return (price.get("product") == product_id and (price.get("currency") or "").lower() == currency.lower()
            and price.get("unit_amount") == unit_amount and recurring.get("interval") == "month"
            and recurring.get("usage_type") == ("metered" if meter_id else "licensed")
            and (meter_id is None or recurring.get("meter") == meter_id))


def _price_sync(*, existing, lookup_key: str, product_id: str, currency: str, unit_amount: int,
                meter_id: str | None = None) -> str:
    """Make the price of `lookup_key` what the plan says: nothing when it already is; else a new price takes
    the lookup key over (prices are immutable in Stripe) and the old one is archived."""
    from billing import stripe_gateway

    if existing is not None and _price_matches(existing, product_id=product_id, currency=currency,
                                               unit_amount=unit_amount, meter_id=meter_id):
        return "unchanged"
    price = stripe_gateway.price_create(product_id=product_id, currency=currency, unit_amount=unit_amount,
                                        lookup_key=lookup_key, meter_id=meter_id)
    if existing is not None:
        stripe_gateway.price_archive(price_id=existing.id)
        logger.info("Stripe price %s: %s replaces %s", lookup_key, price.id, existing.id)
        return "replaced"
    return "created"


def plans_sync_to_stripe() -> list[str]:
    """Create or update each paid plan's Stripe product, monthly price and metered overage price.

    Idempotent: prices are found by lookup key and left alone when amount, currency and interval match; a
    changed amount makes a new price that takes the lookup key over (transfer_lookup_key), as Stripe
    recommends, and the old price is archived (subscriptions on it keep it until changed). The overage
    price is metered on the feature's billing meter (created once, found by its event name). Returns one
    line per plan for the operator.
    """
    from billing import stripe_gateway

    report = []
    plans = [p for p in selectors.plan_list(public_only=False) if p.stripe_lookup_key and not p.is_free]
    keys = [k for p in plans for k in (p.stripe_lookup_key, p.stripe_overage_lookup_key) if k]
    prices = stripe_gateway.prices_by_lookup_key(keys) if keys else {}
    meter = None
    for plan in plans:
        product, product_done = stripe_gateway.product_upsert(
            product_id=selectors.stripe_product_id(plan), name=plan.name, metadata={"fablab_plan": plan.key})
        done = [_("product %(what)s") % {"what": product_done}]
        base = _price_sync(existing=prices.get(plan.stripe_lookup_key), lookup_key=plan.stripe_lookup_key,
                           product_id=product.id, currency=plan.currency,
                           unit_amount=_cents(plan.price_per_month))
        done.append(_("monthly price %(what)s") % {"what": base})
        limit = next((row for row in plan.limits.all() if row.feature == SCANS), None)
        if plan.stripe_overage_lookup_key and limit is not None and limit.allows_overage:
            if meter is None:
                meter, _created = stripe_gateway.meter_get_or_create(
                    event_name=selectors.meter_event_name(SCANS), display_name=_("Scans above the allowance"))
            overage = _price_sync(existing=prices.get(plan.stripe_overage_lookup_key),
                                  lookup_key=plan.stripe_overage_lookup_key, product_id=product.id,
                                  currency=plan.currency, unit_amount=_cents(limit.overage_unit_price),
                                  meter_id=meter.id)
            done.append(_("overage price %(what)s") % {"what": overage})
        elif plan.stripe_overage_lookup_key or (limit is not None and limit.allows_overage):
            done.append(_("no overage price: the plan needs both an overage lookup key and an overage price"))
        report.append(f"{plan.key}: " + ", ".join(str(d) for d in done))
    return report

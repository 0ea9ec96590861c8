"""The few calls fablab makes to Stripe, in one place.

Everything else in billing talks to Stripe only through these functions, so tests replace one thing:
stripe-python's HTTP client (billing/tests/fake_stripe.py). Keys and the API version are dj-stripe's
(settings `STRIPE_SECRET_KEY`, `STRIPE_LIVE_MODE`, `STRIPE_API_VERSION`). A failed call raises
`StripeUnavailable`, a domain error the interfaces show like any other.
"""

import logging
from datetime import datetime

import stripe
from django.conf import settings
from django.utils.translation import gettext as _
from djstripe.models import Customer
from djstripe.settings import djstripe_settings

from fablab.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class StripeUnavailable(ApplicationError):
    status = 502
    title = "Payment provider unavailable"
    code = "stripe_unavailable"


def _options() -> dict:
    return {"api_key": djstripe_settings.get_default_api_key(livemode=settings.STRIPE_LIVE_MODE),
            "stripe_version": djstripe_settings.STRIPE_API_VERSION}


def _failed(exc: stripe.StripeError, doing: str) -> StripeUnavailable:
    logger.warning("Stripe refused %s: %s", doing, exc)
    return StripeUnavailable(_("Stripe could not %(doing)s just now (%(error)s); please try again.") % {
        "doing": doing, "error": exc.user_message or type(exc).__name__})


def customer_get_or_create(*, organization) -> Customer:
    """The organization's Stripe customer, created (in Stripe and in dj-stripe's table) on first use.

    Checkout is always given this customer, so a subscription never lands on an unlinked duplicate.
    """
    try:
        customer, _created = Customer.get_or_create(subscriber=organization, livemode=settings.STRIPE_LIVE_MODE,
                                                    api_key=_options()["api_key"])
    except stripe.StripeError as exc:
        raise _failed(exc, _("create the customer")) from exc
    return customer


def prices_by_lookup_key(lookup_keys: list[str]) -> dict[str, stripe.Price]:
    """The active prices with these lookup keys, by lookup key."""
    try:
        prices = stripe.Price.list(lookup_keys=lookup_keys, active=True, limit=100, **_options())
    except stripe.StripeError as exc:
        raise _failed(exc, _("find the prices")) from exc
    return {price.lookup_key: price for price in prices.auto_paging_iter()}


def checkout_session_create(*, customer_id: str, line_items: list[dict], success_url: str, cancel_url: str,
                            organization_id: int, plan_key: str) -> stripe.checkout.Session:
    """A Checkout Session in subscription mode for `customer_id`; the customer is sent to its `url`."""
    metadata = {"organization": str(organization_id), "plan": plan_key}
    try:
        return stripe.checkout.Session.create(
            mode="subscription", customer=customer_id, line_items=line_items, success_url=success_url,
            cancel_url=cancel_url, client_reference_id=str(organization_id), metadata=metadata,
            subscription_data={"metadata": metadata}, **_options(),
        )
    except stripe.StripeError as exc:
        raise _failed(exc, _("open the checkout")) from exc


def billing_portal_session_create(*, customer_id: str, return_url: str) -> stripe.billing_portal.Session:
    try:
        return stripe.billing_portal.Session.create(customer=customer_id, return_url=return_url, **_options())
    except stripe.StripeError as exc:
        raise _failed(exc, _("open the billing portal")) from exc


def subscription_retrieve(*, subscription_id: str) -> stripe.Subscription:
    try:
        return stripe.Subscription.retrieve(subscription_id, **_options())
    except stripe.StripeError as exc:
        raise _failed(exc, _("read the subscription")) from exc


def subscription_cancel(*, subscription_id: str) -> bool:
    """End a subscription now (no further invoices). False when Stripe no longer knows it (already gone)."""
    try:
        stripe.Subscription.cancel(subscription_id, **_options())
    except stripe.StripeError as exc:
        if _missing(exc):
            return False
        raise _failed(exc, _("cancel the subscription")) from exc
    return True


class MeterEventRefused(ApplicationError):
    """Stripe refused a meter event for good (a bad customer, a timestamp too old): sending it again won't help."""

    status = 502
    title = "Meter event refused"
    code = "meter_event_refused"


def _meter_call(call, doing: str) -> str:
    """Run a meter call: "done", or "duplicate" when Stripe already holds an event with the identifier.

    Stripe answers an identifier it has seen with 400 "An event already exists with identifier ...": the
    unit was reported before (its answer was lost), so that is a success. Any other 4xx is a refusal
    (`MeterEventRefused`); a timeout, a 5xx or a rate limit is `StripeUnavailable`, worth a retry.
    """
    try:
        call()
    except stripe.InvalidRequestError as exc:
        message = str(exc.user_message or "")
        if exc.code == "duplicate_meter_event" or "already exists with identifier" in message:
            return "duplicate"
        logger.warning("Stripe refused %s: %s", doing, exc)
        raise MeterEventRefused(message or type(exc).__name__) from exc
    except stripe.StripeError as exc:
        raise _failed(exc, doing) from exc
    return "done"


def meter_event_create(*, event_name: str, customer_id: str, identifier: str, value: int,
                       timestamp: datetime) -> str:
    """Report `value` units to a billing meter; "done", or "duplicate" when Stripe has the identifier already."""
    return _meter_call(lambda: stripe.billing.MeterEvent.create(
        event_name=event_name, identifier=identifier, timestamp=int(timestamp.timestamp()),
        payload={"stripe_customer_id": customer_id, "value": str(value)}, **_options(),
    ), _("report usage"))


def meter_event_cancel(*, event_name: str, identifier: str) -> str:
    """Cancel a reported meter event (Stripe accepts this within 24 hours of the event)."""
    return _meter_call(lambda: stripe.billing.MeterEventAdjustment.create(
        event_name=event_name, type="cancel", cancel={"identifier": identifier}, **_options(),
    ), _("cancel reported usage"))


def meter_find(*, event_name: str) -> stripe.billing.Meter | None:
    try:
        meters = stripe.billing.Meter.list(status="active", limit=100, **_options()).auto_paging_iter()
        return next((m for m in meters if m.event_name == event_name), None)
    except stripe.StripeError as exc:
        raise _failed(exc, _("read the billing meters")) from exc


def meter_usage_total(*, meter_id: str, customer_id: str, start: datetime, end: datetime) -> float:
    """What Stripe's meter counted for a customer from `start` to `end` (both on whole minutes)."""
    try:
        summaries = stripe.billing.Meter.list_event_summaries(
            meter_id, customer=customer_id, start_time=int(start.timestamp()), end_time=int(end.timestamp()),
            limit=100, **_options())
        return sum(float(s.aggregated_value) for s in summaries.auto_paging_iter())
    except stripe.StripeError as exc:
        raise _failed(exc, _("read the meter's usage")) from exc


# --- Products, prices and the billing meter (billing_sync_plans) ----------------------------------------


def _missing(exc: stripe.StripeError) -> bool:
    return isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing"


def product_upsert(*, product_id: str, name: str, metadata: dict) -> tuple[stripe.Product, str]:
    """The product with our own id `product_id`, created or renamed to match; returns it and what was done
    ("created", "updated" or "unchanged")."""
    try:
        try:
            product = stripe.Product.retrieve(product_id, **_options())
        except stripe.InvalidRequestError as exc:
            if not _missing(exc):
                raise
            return stripe.Product.create(id=product_id, name=name, metadata=metadata, **_options()), "created"
        if product.name == name and product.active:
            return product, "unchanged"
        return stripe.Product.modify(product_id, name=name, active=True, **_options()), "updated"
    except stripe.StripeError as exc:
        raise _failed(exc, _("set up the product %(id)s") % {"id": product_id}) from exc


def meter_get_or_create(*, event_name: str, display_name: str) -> tuple[stripe.billing.Meter, bool]:
    """The active billing meter of `event_name` (a sum of each event's `value` per customer), created if none."""
    try:
        for meter in stripe.billing.Meter.list(status="active", limit=100, **_options()).auto_paging_iter():
            if meter.event_name == event_name:
                return meter, False
        return stripe.billing.Meter.create(
            display_name=display_name, event_name=event_name, default_aggregation={"formula": "sum"},
            customer_mapping={"type": "by_id", "event_payload_key": "stripe_customer_id"},
            value_settings={"event_payload_key": "value"}, **_options(),
        ), True
    except stripe.StripeError as exc:
        raise _failed(exc, _("set up the billing meter %(name)s") % {"name": event_name}) from exc


def price_create(*, product_id: str, currency: str, unit_amount: int, lookup_key: str,
                 meter_id: str | None = None) -> stripe.Price:
    """A monthly price (metered on `meter_id` when given) that takes `lookup_key` over from any other price."""
    recurring = {"interval": "month", "usage_type": "metered" if meter_id else "licensed"}
    if meter_id:
        recurring["meter"] = meter_id
    try:
        return stripe.Price.create(product=product_id, currency=currency.lower(), unit_amount=unit_amount,
                                   recurring=recurring, lookup_key=lookup_key, transfer_lookup_key=True,
                                   **_options())
    except stripe.StripeError as exc:
        raise _failed(exc, _("create the price %(key)s") % {"key": lookup_key}) from exc


def price_archive(*, price_id: str) -> stripe.Price:
    """Archive a price: no new subscription can use it; existing subscriptions keep it."""
    try:
        return stripe.Price.modify(price_id, active=False, **_options())
    except stripe.StripeError as exc:
        raise _failed(exc, _("archive the price %(id)s") % {"id": price_id}) from exc

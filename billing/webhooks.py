"""Stripe's events, as dj-stripe delivers them after checking the signature and storing the event once.

dj-stripe runs these receivers (its `djstripe_receiver`, a Django signal per event type) inside the
transaction that stores the `Event` row, after its own handlers synced the object; an event already
stored is not handled again. Each receiver calls one service with the event's object and creation time.
"""

from datetime import UTC, datetime

from djstripe.event_handlers import djstripe_receiver

from billing import services


def _created(event) -> datetime:
    created = event.stripe_data.get("created")
    return datetime.fromtimestamp(int(created), tz=UTC) if created else event.created


@djstripe_receiver(["customer.subscription.created", "customer.subscription.updated",
                    "customer.subscription.deleted"])
def subscription_changed(sender, event, **kwargs):
    services.subscription_apply(subscription=event.data["object"], event_created=_created(event))


@djstripe_receiver("checkout.session.completed")
def checkout_completed(sender, event, **kwargs):
    services.checkout_completed(session=event.data["object"], event_created=_created(event))


@djstripe_receiver("invoice.payment_failed")
def invoice_payment_failed(sender, event, **kwargs):
    services.invoice_payment_failed(invoice=event.data["object"], event_created=_created(event))


@djstripe_receiver("invoice.paid")
def invoice_paid(sender, event, **kwargs):
    services.invoice_paid(invoice=event.data["object"], event_created=_created(event))

"""The market events' admin: the event form and its inlines save through production.events, the page shows
readiness and results, and its actions (on the page after a confirmation, and on the selected events of the
list) recommend, queue the shortfall and close the event."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import Sale
from production import events
from production.models import EventChecklistItem, EventProduct, MarketEvent, PrintJob
from production.tests.test_market_events import market, printed, units

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
CHANGELIST = "admin:production_marketevent_changelist"


def _change(event):
    return reverse("admin:production_marketevent_change", args=[event.pk])


def _form(event=None, *, lines=(), items=(), **fields):
    """POST data of the event's page: its fields, product lines (product, target, taken, returned) and checklist."""
    start = TODAY + datetime.timedelta(days=5)
    data = {"name": "Advent market", "starts_on": start.isoformat(), "ends_on": start.isoformat(),
            "place": "Town hall", "stall_fee": "30.00", "currency": "EUR", "themes": ["christmas"], "notes": "",
            **fields}
    existing = list(EventProduct.objects.filter(event=event)) if event else []
    data.update({"products-TOTAL_FORMS": str(len(lines)), "products-INITIAL_FORMS": str(len(existing)),
                 "products-MIN_NUM_FORMS": "0", "products-MAX_NUM_FORMS": "1000",
                 "checklist-TOTAL_FORMS": str(len(items)), "checklist-INITIAL_FORMS": "0",
                 "checklist-MIN_NUM_FORMS": "0", "checklist-MAX_NUM_FORMS": "1000"})
    for index, (product, target, taken, returned) in enumerate(lines):
        line = next((row for row in existing if row.product_id == product.pk), None)
        data.update({f"products-{index}-product": str(product.pk), f"products-{index}-target_units": str(target),
                     f"products-{index}-taken_units": "" if taken is None else str(taken),
                     f"products-{index}-returned_units": "" if returned is None else str(returned),
                     f"products-{index}-event": str(event.pk) if event else "",
                     f"products-{index}-id": str(line.pk) if line else ""})
    for index, (text, done) in enumerate(items):
        data.update({f"checklist-{index}-text": text, f"checklist-{index}-assignee": "",
                     **({f"checklist-{index}-done": "on"} if done else {})})
    return data


def test_adding_an_event_with_products_and_a_checklist_through_the_admin(admin_client):
    stars = printed("STAR", stock=2)
    assert admin_client.get(reverse("admin:production_marketevent_add")).status_code == 200
    response = admin_client.post(reverse("admin:production_marketevent_add"), _form(
        lines=[(stars, 6, None, None)], items=[("Book the stall", True), ("Pack the tent", False)]))
    assert response.status_code == 302, response.content[:2000]
    event = MarketEvent.objects.get()
    assert (event.name, event.themes, event.stall_fee) == ("Advent market", ["christmas"], Decimal("30.00"))
    assert EventProduct.objects.get(event=event).target_units == 6
    assert list(EventChecklistItem.objects.order_by("position").values_list("text", "done")) == [
        ("Book the stall", True), ("Pack the tent", False)]

    page = admin_client.get(_change(event)).content.decode()
    assert "to come from the queue" in page and "STAR" in page and "1 of 2 done" in page


def test_bad_input_on_the_page_is_shown_and_nothing_is_saved(admin_client):
    stars = printed("STAR", stock=2)
    event = market(starts_in=5)
    response = admin_client.post(_change(event), _form(event, name="Renamed", lines=[(stars, 6, 3, 5)]))
    assert response.status_code == 200
    assert "cannot come back" in response.content.decode()
    response = admin_client.post(_change(event), _form(event, name="Renamed", lines=[(stars, -2, None, None)]))
    assert response.status_code == 200
    response = admin_client.post(_change(event), _form(event, themes=["carnival"]))
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.name == "Christmas market" and not EventProduct.objects.exists()


def test_the_page_actions_ask_first_then_queue_and_close(admin_client):
    stars = printed("STAR", stock=10, price="4.00")
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, target_units=12)
    queue_url = reverse("admin:production_marketevent_queue_detail", args=[event.pk])
    confirm = admin_client.get(queue_url)
    assert confirm.status_code == 200 and not PrintJob.objects.exists()
    assert admin_client.post(queue_url).status_code == 302
    assert PrintJob.objects.get().copies == 2

    response = admin_client.post(_change(event), _form(
        event, name=event.name, starts_on=event.starts_on.isoformat(), ends_on=event.ends_on.isoformat(),
        lines=[(stars, 12, 8, 3)]))
    assert response.status_code == 302, response.content[:2000]
    close_url = reverse("admin:production_marketevent_close_detail", args=[event.pk])
    admin_client.post(close_url)
    event.refresh_from_db()
    assert event.status == "done"
    assert Sale.objects.get(product=stars).quantity == 5 and units(stars) == 5
    page = admin_client.get(_change(event)).content.decode()
    assert "20.00 EUR" in page  # revenue of STAR: 5 × 4.00
    # A second close changes nothing.
    admin_client.post(close_url)
    assert Sale.objects.count() == 1


def test_list_actions_report_refusals_per_event(admin_client):
    stars = printed("STAR", stock=1, price=None)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, taken_units=1, returned_units=0)
    response = admin_client.post(reverse(CHANGELIST), {"action": "close_selected", "_selected_action": [event.pk]},
                                 follow=True)
    assert "has no sale price" in response.content.decode()
    event.refresh_from_db()
    assert event.status == "planned" and not Sale.objects.exists()
    listing = admin_client.get(reverse(CHANGELIST))
    assert listing.status_code == 200 and "Christmas market" in listing.content.decode()

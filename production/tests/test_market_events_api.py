"""GET /api/v1/production/events: the lab's read keys see events with their products, readiness and results;
partners' keys are refused."""

import pytest

from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from production import events
from production.tests.factories import job
from production.tests.test_market_events import market, printed

pytestmark = pytest.mark.django_db

URL = "/api/v1/production/events"


@pytest.fixture
def lab_reader():
    return ApiClient(make_api_key(OrganizationFactory(kind=OrganizationKind.LAB), scope=ApiKeyScope.READ)[1])


def test_an_upcoming_event_with_its_products_and_readiness(lab_reader):
    stars = printed("STAR", stock=4)
    job(stars.variant.current_version, copies=2)
    event = market("Advent market", starts_in=7)
    events.market_event_product_set(event=event, product=stars, target_units=10)
    item = events.market_event_checklist_add(event=event, text="Book the stall")
    events.market_event_checklist_toggle(item=item)

    body = lab_reader.get(f"{URL}/{event.pk}").json()

    assert (body["name"], body["status"], body["themes"], body["results"]) == (
        "Advent market", "planned", ["christmas"], None)
    assert body["products"] == [{
        "product_id": stars.pk, "sku": "STAR", "name": "Product STAR", "target_units": 10,
        "recommended_units": None, "taken_units": None, "returned_units": None, "sold_units": None, "in_stock": 4,
        "queued_units": 2, "shortfall": 4, "ready": False, "unit_price": "6.00", "sell_through": None,
        "revenue": None, "margin": None}]
    assert body["readiness"]["days_left"] == 7 and body["readiness"]["checklist_share"] == "1.00"
    assert body["checklist"] == [{"id": item.pk, "text": "Book the stall", "done": True, "assignee": None}]


def test_a_closed_event_shows_its_results_and_the_filters_work(lab_reader):
    stars = printed("STAR", stock=10, price="5.00", cost="1.00")
    closed = market("Last market", starts_in=-3, days=1)
    events.market_event_product_set(event=closed, product=stars, taken_units=8, returned_units=2)
    events.market_event_close(event=closed)
    upcoming = market("Next market", starts_in=3)

    listing = lab_reader.get(URL).json()
    assert [row["name"] for row in listing["items"]] == ["Next market", "Last market"]
    done = lab_reader.get(URL, {"status": "done"}).json()["items"]
    assert [row["id"] for row in done] == [closed.pk]
    results = done[0]["results"]
    assert (results["sold"], results["sell_through"], results["revenue"]) == (6, "0.75", "30.00")
    assert done[0]["products"][0]["sold_units"] == 6
    assert [row["id"] for row in lab_reader.get(URL, {"upcoming": "true"}).json()["items"]] == [upcoming.pk]
    assert_problem(lab_reader.get(URL, {"status": "nonsense"}), 422)
    assert_problem(lab_reader.get(f"{URL}/999999"), 404)


def test_partners_and_customers_are_refused():
    event = market(starts_in=1)
    for kind in (OrganizationKind.PARTNER, OrganizationKind.CUSTOMER):
        client = ApiClient(make_api_key(OrganizationFactory(kind=kind), scope=ApiKeyScope.WRITE)[1])
        assert_problem(client.get(f"{URL}/{event.pk}"), 403)
        assert_problem(client.get(URL), 403)

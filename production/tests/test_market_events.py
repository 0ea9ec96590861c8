"""Market events (production.events, production.event_selectors): the shortfall queued as print jobs due the day
before the event and planned in time, closing an event into market sales through the product ledger, the
results and the recommendations they feed, readiness, and every bad input refused with nothing written."""

import datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from fablab.exceptions import Conflict, IllegalTransition, InvalidInput
from fablab.tests.factories import UserFactory
from inventory import services as inventory_services
from inventory.models import Location, Product, ProductMovement, ProductStock, Sale
from inventory.tests.factories import key
from production import event_selectors, events, services
from production.choices import MarketEventStatus, PrintJobStatus, Purpose
from production.models import EventChecklistItem, EventProduct, MarketEvent, PrintJob
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool, version

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def _shelf() -> Location:
    return Location.objects.filter(name="Shelf").first() or inventory_services.location_create(name="Shelf",
                                                                                              kind="shelf")


def printed(sku: str, *, stock: int = 0, price: str | None = "6.00", cost: str = "1.50", **metadata) -> Product:
    """A printed product whose variant's current version prints one unit per plate (an MK4S, PETG #FF8000)."""
    version_ = version(**metadata)
    variant = version_.variant
    variant.current_version = version_
    variant.save(update_fields=["current_version"])
    product = inventory_services.product_create(
        sku=sku, name=f"Product {sku}", kind="printed", variant=variant,
        sale_price=Decimal(price) if price is not None else None, unit_cost=Decimal(cost))
    if stock:
        add_stock(product, stock)
    return product


def add_stock(product: Product, units: int) -> None:
    inventory_services.product_stock_change(product=product, location=_shelf(), kind="produced", quantity=units,
                                            idempotency_key=key("made"))


def units(product: Product) -> int:
    return ProductStock.objects.filter(product=product).aggregate(n=Sum("quantity"))["n"] or 0


def ledger(product: Product) -> int:
    return ProductMovement.objects.filter(product=product).aggregate(n=Sum("delta_units"))["n"] or 0


def market(name="Christmas market", *, starts_in=10, days=2, themes=("christmas",), **fields) -> MarketEvent:
    start = TODAY + datetime.timedelta(days=starts_in)
    return events.market_event_create(name=name, starts_on=start, ends_on=start + datetime.timedelta(days=days - 1),
                                      themes=themes, **fields)


# --- shortfall → print jobs -------------------------------------------------------------------------------------


@pytest.fixture
def quick_plans(settings):
    settings.PRODUCTION_PLAN_SECONDS = 1
    settings.PRODUCTION_RECHECK_SECONDS = 0
    settings.PRODUCTION_SHIFTS = []
    settings.PRODUCTION_HOLIDAYS = []


def test_the_shortfall_is_queued_once_due_the_day_before_and_the_planner_finishes_it_in_time(quick_plans):
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="1000")
    PrinterFactory(model="MK4S", name="farm", bed_z_mm=250)
    stars = printed("STAR", stock=3, estimated_time_s=1800)
    earlier = job(stars.variant.current_version, copies=2)  # already waiting: counts as units to come
    bells = printed("BELL", stock=10)
    bought = inventory_services.product_create(sku="BAG", name="Paper bags", kind="bought")
    event = market(starts_in=10)
    events.market_event_product_set(event=event, product=stars, target_units=10)
    events.market_event_product_set(event=event, product=bells, target_units=4)  # covered by stock
    events.market_event_product_set(event=event, product=bought, target_units=50)

    result = events.market_event_queue_shortfall(event=event)

    assert len(result.jobs) == 1
    queued = PrintJob.objects.get(pk=result.jobs[0].pk)
    assert queued.version == stars.variant.current_version
    assert queued.copies == 10 - 3 - 2  # target − stock − already queued
    expected_due = timezone.make_aware(datetime.datetime.combine(event.starts_on - datetime.timedelta(days=1),
                                                                 datetime.time.min))
    assert queued.due_at == expected_due
    assert queued.purpose == Purpose.BUSINESS and queued.status == PrintJobStatus.QUEUED
    assert event.name in queued.reference
    assert result.skipped == ["BAG: bought in, 50 units to buy."]

    # Running it again queues nothing: the new job counts as units to come.
    again = events.market_event_queue_shortfall(event=event)
    assert again.jobs == []
    assert PrintJob.objects.filter(version__variant=stars.variant).count() == 2
    readiness = event_selectors.market_event_readiness(event=event)
    star_row = next(row for row in readiness.products if row.line.product == stars)
    assert (star_row.stock, star_row.queued, star_row.shortfall, star_row.ready) == (3, 7, 0, False)

    # The farm plan puts both jobs on the printer, finished long before they are due.
    plan = services.print_queue_replan(time_limit=1)
    assert plan.late_jobs == 0
    queued.refresh_from_db()
    earlier.refresh_from_db()
    assert queued.planned_finish is not None and queued.planned_finish <= queued.due_at
    assert earlier.planned_finish is not None


def test_a_larger_target_later_queues_only_the_difference():
    stars = printed("STAR")
    event = market()
    events.market_event_product_set(event=event, product=stars, target_units=4)
    first = events.market_event_queue_shortfall(event=event).jobs
    events.market_event_product_set(event=event, product=stars, target_units=6)
    second = events.market_event_queue_shortfall(event=event).jobs
    assert [item.copies for item in first] == [4]
    assert [item.copies for item in second] == [2]


def test_a_printed_product_without_a_version_is_reported_not_queued():
    stars = printed("STAR")
    stars.variant.current_version = None
    stars.variant.save(update_fields=["current_version"])
    event = market()
    events.market_event_product_set(event=event, product=stars, target_units=4)
    result = events.market_event_queue_shortfall(event=event)
    assert result.jobs == [] and "STAR" in result.skipped[0]
    assert not PrintJob.objects.exists()


def test_nothing_is_queued_for_an_event_that_is_over_or_closed():
    stars = printed("STAR", stock=5)
    over = market(starts_in=-5, days=1)
    events.market_event_product_set(event=over, product=stars, target_units=9)
    with pytest.raises(InvalidInput, match="is over"):
        events.market_event_queue_shortfall(event=over)
    closed = market(starts_in=0)
    events.market_event_close(event=closed)
    with pytest.raises(Conflict):
        events.market_event_queue_shortfall(event=closed)
    assert not PrintJob.objects.exists()


# --- closing ----------------------------------------------------------------------------------------------------


def test_closing_records_the_sold_units_as_market_sales_through_the_ledger(settings):
    settings.PRODUCTION_VAT_PERCENT = Decimal("19")
    stars = printed("STAR", stock=20, price="5.95", cost="1.20")
    bells = printed("BELL", stock=6, price="3.57", cost="0.50")
    event = market(starts_in=-1, days=2, stall_fee="40.00")
    events.market_event_product_set(event=event, product=stars, target_units=15, taken_units=12)
    events.market_event_product_set(event=event, product=bells, target_units=6, taken_units=6)
    user = UserFactory(is_staff=True)

    closed = events.market_event_close(event=event, counts={stars.pk: {"returned": 4}, str(bells.pk): {
        "returned": 0}}, by=user)

    assert closed.status == MarketEventStatus.DONE and closed.closed_by == user and closed.closed_at
    star_sale = Sale.objects.get(product=stars)
    assert (star_sale.quantity, star_sale.unit_price, star_sale.channel, star_sale.sold_on) == (
        8, Decimal("5.95"), "market", event.starts_on)
    assert Sale.objects.get(product=bells).quantity == 6
    assert units(stars) == 12 == ledger(stars)
    assert units(bells) == 0 == ledger(bells)
    line = EventProduct.objects.get(event=event, product=stars)
    assert line.sale == star_sale and line.unit_cost == Decimal("1.20") and line.sold_units == 8

    results = event_selectors.market_event_results(event=closed)
    star = next(row for row in results.products if row.line.product == stars)
    assert star.sell_through == Decimal("0.67")
    assert star.revenue == Decimal("47.60")
    assert star.revenue_net == Decimal("40.00")  # 5.95 / 1.19 = 5.00 a unit
    assert star.margin == Decimal("40.00") - Decimal("9.60")
    bell = next(row for row in results.products if row.line.product == bells)
    assert bell.sell_through == Decimal("1.00") and bell.margin == Decimal("18.00") - Decimal("3.00")
    assert results.revenue == Decimal("47.60") + Decimal("21.42")
    assert results.margin_after_fee == Decimal("30.40") + Decimal("15.00") - Decimal("40.00")

    # The price changing later does not change the recorded results.
    inventory_services.product_update(product=stars, sale_price=Decimal("9.99"), unit_cost=Decimal("5"))
    assert next(row for row in event_selectors.market_event_results(event=closed).products
                if row.line.product == stars).revenue == Decimal("47.60")


def test_closing_twice_records_the_sales_once():
    stars = printed("STAR", stock=10)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, taken_units=5, returned_units=1)
    events.market_event_close(event=event)
    again = events.market_event_close(event=event, counts={stars.pk: {"taken": 5, "returned": 0}})
    assert again.status == MarketEventStatus.DONE
    assert Sale.objects.filter(product=stars).aggregate(n=Sum("quantity"))["n"] == 4
    assert units(stars) == 6 == ledger(stars)
    assert EventProduct.objects.get(event=event).returned_units == 1
    with pytest.raises(Conflict):
        events.market_event_product_set(event=event, product=stars, returned_units=0)


def test_a_product_not_taken_records_no_sale():
    stars = printed("STAR", stock=10)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, target_units=5)
    events.market_event_close(event=event)
    assert not Sale.objects.exists() and units(stars) == 10


def _nothing_written(event, *products, stock):
    event.refresh_from_db()
    assert event.status != MarketEventStatus.DONE and event.closed_at is None
    assert not Sale.objects.exists()
    assert [units(product) for product in products] == stock
    assert not EventProduct.objects.filter(event=event, sale__isnull=False).exists()


@pytest.mark.parametrize(("counts", "message"), [
    ({"STAR": {"taken": 5, "returned": 6}}, "cannot come back"),
    ({"STAR": {"taken": -1, "returned": 0}}, "between 0 and"),
    ({"STAR": {"taken": 10**12, "returned": 0}}, "between 0 and"),
    ({"STAR": {"taken": "1e400", "returned": 0}}, "between 0 and"),
    ({"STAR": {"taken": 2.5, "returned": 0}}, "whole number"),
    ({"STAR": {"taken": True, "returned": 0}}, "whole number"),
    ({"STAR": {"taken": 5}}, "enter the units that came back"),
    ({"STAR": {"returned": 2}, "BELL": {"taken": 3, "returned": 0}}, "taken before"),
    ({999999: {"taken": 1, "returned": 0}}, "not on this event"),
    ({"abc": {"taken": 1, "returned": 0}}, "not a product id"),
    ({"STAR": 5}, "taken and returned"),
])
def test_bad_counts_are_refused_and_nothing_is_written(counts, message):
    stars = printed("STAR", stock=10)
    bells = printed("BELL", stock=10)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars)
    events.market_event_product_set(event=event, product=bells, taken_units=4, returned_units=1)
    skus = {"STAR": stars.pk, "BELL": bells.pk}
    counts = {skus.get(name, name): value for name, value in counts.items()}
    with pytest.raises(InvalidInput, match=message):
        events.market_event_close(event=event, counts=counts)
    _nothing_written(event, stars, bells, stock=[10, 10])
    assert EventProduct.objects.get(event=event, product=bells).returned_units == 1


def test_a_refusal_after_an_earlier_sale_rolls_the_whole_close_back():
    """BELL sells first (alphabetically), then STAR has no price: BELL's sale is not kept either."""
    bells = printed("BELL", stock=10)
    stars = printed("STAR", stock=10, price=None)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=bells, taken_units=4, returned_units=1)
    events.market_event_product_set(event=event, product=stars, taken_units=4, returned_units=1)
    with pytest.raises(InvalidInput, match="STAR has no sale price"):
        events.market_event_close(event=event)
    _nothing_written(event, bells, stars, stock=[10, 10])


def test_selling_more_than_is_in_stock_is_refused_with_nothing_written():
    stars = printed("STAR", stock=3)
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, taken_units=8, returned_units=0)
    with pytest.raises(InvalidInput, match="STAR has 3 units in stock; 8 sold units cannot be recorded"):
        events.market_event_close(event=event)
    _nothing_written(event, stars, stock=[3])


def test_units_sold_are_taken_from_every_location_holding_them():
    stars = printed("STAR", stock=5)
    van = inventory_services.location_create(name="Van", kind="other")
    inventory_services.product_stock_change(product=stars, location=van, kind="produced", quantity=4,
                                            idempotency_key=key("van"))
    event = market(starts_in=0)
    events.market_event_product_set(event=event, product=stars, taken_units=9, returned_units=1)
    events.market_event_close(event=event)
    assert sorted(Sale.objects.values_list("quantity", flat=True)) == [3, 5]
    assert units(stars) == 1 == ledger(stars)
    assert event_selectors.market_event_results(event=event).sold == 8
    assert EventProduct.objects.get(event=event).sale.quantity == 5


def test_an_event_in_the_future_cannot_be_closed():
    stars = printed("STAR", stock=3)
    event = market(starts_in=3)
    events.market_event_product_set(event=event, product=stars, taken_units=2, returned_units=0)
    with pytest.raises(InvalidInput, match="once it has taken place"):
        events.market_event_close(event=event)
    _nothing_written(event, stars, stock=[3])


# --- recommendations --------------------------------------------------------------------------------------------


def _past(name, themes, lines, *, days=2, years_ago=1):
    start = TODAY - datetime.timedelta(days=365 * years_ago)
    event = events.market_event_create(name=name, starts_on=start, ends_on=start + datetime.timedelta(days=days - 1),
                                       themes=themes)
    for product, taken, returned in lines:
        add_stock(product, taken)
        events.market_event_product_set(event=event, product=product, taken_units=taken, returned_units=returned)
    return events.market_event_close(event=event)


def test_recommendations_come_from_past_events_sharing_a_theme_scaled_and_with_the_seasons_velocity():
    stars = printed("STAR")
    bells = printed("BELL")
    eggs = printed("EGG")
    _past("Christmas market last year", ["christmas", "other"], [(stars, 20, 5), (bells, 10, 0)], days=2)
    _past("Easter market", ["easter"], [(eggs, 30, 10)], days=1)
    # This season STAR sold 28 units in the shop over the last 4 weeks: 7 a week.
    add_stock(stars, 28)
    for week in range(4):
        inventory_services.sale_record(product=stars, quantity=7, unit_price="6.00", channel="shop",
                                       sold_on=TODAY - datetime.timedelta(days=7 * week + 1),
                                       idempotency_key=key("shop"))
    event = market("Christmas market", starts_in=20, days=1, themes=["christmas"])

    rows = {row.product.sku: row for row in event_selectors.market_event_recommendations(event=event)}

    assert set(rows) == {"STAR", "BELL"}  # the Easter market shares no theme
    # STAR: sold 15 of 20 in 2 days → 7.5 for one day; plus 7 a week × 1/7 → ceil(8.5) = 9.
    assert (rows["STAR"].history_units, rows["STAR"].velocity_units, rows["STAR"].units) == (
        Decimal("7.50"), Decimal("1.00"), 9)
    # BELL sold out (10 of 10): 10 × 1/2 × 1.25 = 6.25 → 7.
    assert (rows["BELL"].history_units, rows["BELL"].units, rows["BELL"].events) == (Decimal("6.25"), 7, 1)

    events.market_event_product_set(event=event, product=bells, target_units=20)
    applied = events.market_event_recommend(event=event)
    assert {line.product.sku for line in applied} == {"STAR", "BELL"}
    lines = {line.product.sku: line for line in EventProduct.objects.filter(event=event)}
    assert (lines["STAR"].target_units, lines["STAR"].recommended_units) == (9, 9)
    assert (lines["BELL"].target_units, lines["BELL"].recommended_units) == (20, 7)  # staff's target kept


def test_without_a_matching_past_event_the_seasons_best_sellers_are_recommended():
    stars = printed("STAR", stock=14)
    inventory_services.sale_record(product=stars, quantity=14, unit_price="6.00", channel="shop",
                                   sold_on=TODAY - datetime.timedelta(days=2), idempotency_key=key("shop"))
    event = market("Summer fair", starts_in=5, days=2, themes=["summer"])
    rows = event_selectors.market_event_recommendations(event=event)
    assert [(row.product.sku, row.units, row.events) for row in rows] == [("STAR", 1, 0)]  # 3.5 a week × 2/7


# --- readiness, checklist, transitions --------------------------------------------------------------------------


def test_readiness_of_the_next_event_for_the_dashboard():
    assert event_selectors.market_event_next_readiness() == {}
    stars = printed("STAR", stock=4)
    job(stars.variant.current_version, copies=3)
    market("Later market", starts_in=30)
    market("Old market", starts_in=-10, days=1)
    event = market("Next market", starts_in=7)
    events.market_event_product_set(event=event, product=stars, target_units=10)
    first = events.market_event_checklist_add(event=event, text="Book the stall")
    events.market_event_checklist_add(event=event, text="Pack the card reader", assignee=UserFactory())
    events.market_event_checklist_toggle(item=first)

    data = event_selectors.market_event_next_readiness()

    assert data["event_id"] == event.pk and data["days_left"] == 7
    assert data["products"] == [{"product_id": stars.pk, "sku": "STAR", "name": "Product STAR", "target": 10,
                                 "stock": 4, "queued": 3, "shortfall": 3, "ready": False}]
    assert (data["checklist_done"], data["checklist_total"], data["checklist_share"]) == (1, 2, Decimal("0.50"))
    assert (data["units_target"], data["units_in_stock"], data["shortfall"]) == (10, 4, 3)
    first.refresh_from_db()
    assert first.done and first.done_at is not None
    events.market_event_checklist_toggle(item=first)
    first.refresh_from_db()
    assert not first.done and first.done_at is None


def test_the_status_moves_planned_preparing_done_and_only_closing_finishes():
    event = market()
    with pytest.raises(Conflict, match="Close the event"):
        events.market_event_transition(event=event, status=MarketEventStatus.DONE)
    assert events.market_event_transition(event=event, status="preparing").status == MarketEventStatus.PREPARING
    assert events.market_event_transition(event=event, status="planned").status == MarketEventStatus.PLANNED
    with pytest.raises(IllegalTransition):
        events.market_event_transition(event=event, status="nonsense")
    closed = market(starts_in=0)
    events.market_event_close(event=closed)
    with pytest.raises(IllegalTransition):
        events.market_event_transition(event=closed, status=MarketEventStatus.PLANNED)


# --- bad inputs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": ""}, "name is required"),
    ({"name": "x\x00y"}, "NUL"),
    ({"name": "x" * 201}, "longer than"),
    ({"themes": ["carnival"]}, "Unknown theme"),
    ({"themes": "christmas"}, None),  # a single name is fine
    ({"themes": [1]}, "Unknown theme"),
    ({"stall_fee": "-1"}, "stall fee"),
    ({"stall_fee": "1e20"}, "stall fee"),
    ({"stall_fee": "NaN"}, "stall fee"),
    ({"stall_fee": "ten"}, "stall fee"),
    ({"starts_on": "2026-13-40"}, "must be a date"),
    ({"ends_on": TODAY - datetime.timedelta(days=1)}, "cannot lie before"),
    ({"ends_on": TODAY + datetime.timedelta(days=400)}, "at most"),
    ({"currency": "euro"}, "currency"),
])
def test_bad_event_fields_are_refused_and_no_event_is_written(fields, message):
    arguments = {"name": "Market", "starts_on": TODAY, **fields}
    if message is None:
        assert events.market_event_create(**arguments).themes == ["christmas"]
        return
    with pytest.raises(InvalidInput, match=message):
        events.market_event_create(**arguments)
    assert not MarketEvent.objects.exists()


def test_bad_updates_leave_the_event_as_it_was():
    event = market(stall_fee="25.00")
    with pytest.raises(InvalidInput):
        events.market_event_update(event=event, name="New name", ends_on=event.starts_on - datetime.timedelta(days=1))
    with pytest.raises(InvalidInput, match="no field"):
        events.market_event_update(event=event, status="done")
    event.refresh_from_db()
    assert (event.name, event.stall_fee, event.status) == ("Christmas market", Decimal("25.00"), "planned")
    updated = events.market_event_update(event=event, place="Town square", themes=["christmas", "other"])
    assert updated.place == "Town square"


@pytest.mark.parametrize(("fields", "message"), [
    ({"target_units": -1}, "between 0 and"),
    ({"target_units": 10_001}, "between 0 and"),
    ({"target_units": "12abc"}, "whole number"),
    ({"target_units": float("inf")}, "whole number"),
    ({"taken_units": 3, "returned_units": 4}, "cannot come back"),
    ({"returned_units": 1}, "taken before"),
])
def test_bad_targets_and_counts_are_refused_and_no_line_is_written(fields, message):
    stars = printed("STAR")
    event = market()
    with pytest.raises(InvalidInput, match=message):
        events.market_event_product_set(event=event, product=stars, **fields)
    assert not EventProduct.objects.exists()


def test_a_product_that_does_not_exist_is_refused():
    event = market()
    with pytest.raises(InvalidInput, match="product"):
        events.market_event_product_set(event=event, product=Product(sku="GHOST"), target_units=1)
    assert not EventProduct.objects.exists()


def test_checklist_text_is_required_and_a_closed_events_checklist_is_kept():
    event = market(starts_in=0)
    with pytest.raises(InvalidInput):
        events.market_event_checklist_add(event=event, text="   ")
    item = events.market_event_checklist_add(event=event, text="Bring the tent")
    events.market_event_close(event=event)
    with pytest.raises(Conflict):
        events.market_event_checklist_toggle(item=item)
    with pytest.raises(Conflict):
        events.market_event_checklist_add(event=event, text="Too late")
    assert list(EventChecklistItem.objects.values_list("text", "done")) == [("Bring the tent", False)]


def test_the_demo_makes_a_closed_market_with_results_and_a_coming_one_with_recommended_products():
    from fablab.management.commands.demo import Command

    keys = printed("P-KEY-S-ORANGE", stock=24, price="4.90")
    printed("P-CLIP-6-BLACK", stock=40, price="2.50")
    printed("P-COASTER-OCEAN", stock=6, price="7.90")
    Command()._market_events()
    Command()._market_events()  # a second run adds nothing

    past, coming = MarketEvent.objects.order_by("starts_on")
    assert past.status == MarketEventStatus.DONE and coming.status == MarketEventStatus.PLANNED
    assert event_selectors.market_event_results(event=past).sold == 9 + 6 + 4
    assert units(keys) == 24 - 9 == ledger(keys)
    targets = dict(EventProduct.objects.filter(event=coming).values_list("product__sku", "target_units"))
    assert targets == {"P-KEY-S-ORANGE": 9, "P-CLIP-6-BLACK": 6, "P-COASTER-OCEAN": 4}  # same length, none sold out
    assert coming.checklist.count() == 3 and coming.checklist.filter(done=True).count() == 1

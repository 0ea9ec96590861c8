"""Schemas of the market events' API (production.api_events)."""

from datetime import date, datetime

from ninja import Schema

from fablab.api_types import ApiDecimal, choice
from production import event_selectors
from production.choices import EventTheme, MarketEventStatus


class EventProductOut(Schema):
    product_id: int
    sku: str
    name: str
    target_units: int
    recommended_units: int | None
    taken_units: int | None
    returned_units: int | None
    sold_units: int | None
    in_stock: int
    queued_units: int  # still to come from print jobs of its variant that have not ended
    shortfall: int  # target − in stock − queued, at least 0
    ready: bool  # in stock reaches the target
    unit_price: ApiDecimal | None
    sell_through: ApiDecimal | None  # sold / taken, 0..1
    revenue: ApiDecimal | None
    margin: ApiDecimal | None


class EventChecklistItemOut(Schema):
    id: int
    text: str
    done: bool
    assignee: str | None


class EventReadinessOut(Schema):
    days_left: int
    products_total: int
    products_ready: int
    products_covered: int
    units_target: int
    units_in_stock: int
    shortfall: int
    checklist_done: int
    checklist_total: int
    checklist_share: ApiDecimal | None


class EventResultsOut(Schema):
    taken: int
    sold: int
    sell_through: ApiDecimal | None
    revenue: ApiDecimal
    margin: ApiDecimal
    stall_fee: ApiDecimal
    margin_after_fee: ApiDecimal


class MarketEventOut(Schema):
    id: int
    name: str
    starts_on: date
    ends_on: date
    place: str
    stall_fee: ApiDecimal
    currency: str
    themes: list[choice(EventTheme)]
    status: choice(MarketEventStatus)
    closed_at: datetime | None
    products: list[EventProductOut]
    checklist: list[EventChecklistItemOut]
    readiness: EventReadinessOut
    results: EventResultsOut | None  # once the event is closed

    @staticmethod
    def resolve_products(obj):
        return event_selectors.market_event_summary(event=obj)["products"]

    @staticmethod
    def resolve_checklist(obj):
        return event_selectors.market_event_summary(event=obj)["checklist"]

    @staticmethod
    def resolve_readiness(obj):
        return event_selectors.market_event_summary(event=obj)["readiness"]

    @staticmethod
    def resolve_results(obj):
        return event_selectors.market_event_summary(event=obj)["results"]


class MarketEventFilterIn(Schema):
    status: choice(MarketEventStatus) | None = None
    upcoming: bool | None = None

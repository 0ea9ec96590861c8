"""Schemas of the market events' API (production.api_events)."""

from datetime import date, datetime
from decimal import Decimal

from ninja import Schema

from production import event_selectors


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
    unit_price: Decimal | None
    sell_through: Decimal | None  # sold / taken, 0..1
    revenue: Decimal | None
    margin: Decimal | None


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
    checklist_share: Decimal | None


class EventResultsOut(Schema):
    taken: int
    sold: int
    sell_through: Decimal | None
    revenue: Decimal
    margin: Decimal
    stall_fee: Decimal
    margin_after_fee: Decimal


class MarketEventOut(Schema):
    id: int
    name: str
    starts_on: date
    ends_on: date
    place: str
    stall_fee: Decimal
    currency: str
    themes: list[str]
    status: str  # planned, preparing, done
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
    status: str | None = None
    upcoming: bool | None = None

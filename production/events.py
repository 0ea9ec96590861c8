"""Market events: every write (production.event_selectors holds the reads).

An event is planned, then prepared, then done (choices.MARKET_EVENT_TRANSITIONS, `market_event_transition`).
Staff put products on it with a target (`market_event_product_set`, or `market_event_recommend` from past
events sharing a theme), keep a checklist, and queue what stock and the queue do not cover
(`market_event_queue_shortfall`): for each printed product, shortfall = target − units in stock − units still
to come from the variant's print jobs that have not ended; it is queued as print jobs of the variant's
current version, due at the start of the day before the event. Running it again queues nothing more, as the
jobs it queued count as still to come.

Closing the event (`market_event_close`) takes the units taken and returned per product, records sold =
taken − returned as market sales through inventory's sale service (the product ledger: units leave stock,
one sale per location, those holding most first), dated the event's first day, at the product's sale price,
and keeps the product's unit cost of that day for the margin. All of it or nothing is written; closing
again changes nothing.
"""

import datetime
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import ApplicationError, Conflict, InvalidInput
from fablab.states import check_transition
from fablab.validation import validate
from inventory import services as inventory_services
from inventory.choices import SalesChannel, SourceType
from inventory.models import Product, ProductStock, Sale
from production import event_selectors
from production import services as production_services
from production.choices import MARKET_EVENT_TRANSITIONS, EventTheme, MarketEventStatus, Purpose
from production.models import (
    MAX_COPIES,
    MAX_EVENT_UNITS,
    MAX_STALL_FEE,
    EventChecklistItem,
    EventProduct,
    MarketEvent,
    PrintJob,
)

MAX_EVENT_DAYS = 60  # a market of more than two months is a typing error
_UNSET = object()
EVENT_FIELDS = ("name", "starts_on", "ends_on", "place", "stall_fee", "currency", "themes", "notes")


# --- checked inputs ---------------------------------------------------------------------------------------------


def _text(value, *, field: str, max_length: int, required: bool = False) -> str:
    text = "" if value is None else str(value)
    if "\x00" in text:
        raise InvalidInput(_("%(field)s must not contain NUL characters.") % {"field": field})
    text = text.strip()
    if len(text) > max_length:
        raise InvalidInput(_("%(field)s is longer than %(max)s characters.") % {"field": field, "max": max_length})
    if required and not text:
        raise InvalidInput(_("%(field)s is required.") % {"field": field})
    return text


def _day(value, *, field: str) -> datetime.date:
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(_("%(field)s must be a date (YYYY-MM-DD), not %(value)r.")
                               % {"field": field, "value": value}) from None
    if not isinstance(value, datetime.date):
        raise InvalidInput(_("%(field)s must be a date, not %(value)r.") % {"field": field, "value": value})
    return value


def event_units(value, *, field: str, allow_none: bool = False) -> int | None:
    """A count of units at an event: a whole number from 0 to MAX_EVENT_UNITS (None where allowed)."""
    if value is None or value == "":
        if allow_none:
            return None
        raise InvalidInput(_("%(field)s is required.") % {"field": field})
    if isinstance(value, bool):
        raise InvalidInput(_("%(field)s must be a whole number.") % {"field": field})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("%(field)s must be a whole number, not %(value)r.")
                           % {"field": field, "value": value}) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidInput(_("%(field)s must be a whole number, not %(value)r.") % {"field": field, "value": value})
    if not 0 <= number <= MAX_EVENT_UNITS:
        raise InvalidInput(_("%(field)s must be between 0 and %(max)s units, not %(value)s.")
                           % {"field": field, "max": MAX_EVENT_UNITS, "value": number})
    return int(number)


def _fee(value) -> Decimal:
    if isinstance(value, bool):
        raise InvalidInput(_("The stall fee must be an amount."))
    try:
        amount = Decimal(str(value if value is not None else "0").strip() or "0")
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("The stall fee must be an amount, not %(value)r.") % {"value": value}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_STALL_FEE:
        raise InvalidInput(_("The stall fee must be between 0 and %(max)s.") % {"max": MAX_STALL_FEE})
    return amount.quantize(Decimal("0.01"))


def _themes(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in (item.strip() for item in value.split(",")) if part]
    if not isinstance(value, list | tuple | set | frozenset):
        raise InvalidInput(_("Themes are a list of names."))
    chosen = set()
    for theme in value:
        if not isinstance(theme, str) or theme not in EventTheme.values:
            raise InvalidInput(_("Unknown theme %(theme)r; choose from %(choices)s.")
                               % {"theme": theme, "choices": ", ".join(EventTheme.values)})
        chosen.add(theme)
    return [theme for theme in EventTheme.values if theme in chosen]


def _clean_fields(fields: dict) -> dict:
    unknown = set(fields) - set(EVENT_FIELDS)
    if unknown:
        raise InvalidInput(_("A market event has no field %(field)s.") % {"field": ", ".join(sorted(unknown))})
    cleaned = {}
    for name, value in fields.items():
        if name == "name":
            cleaned[name] = _text(value, field=_("The name"), max_length=200, required=True)
        elif name == "place":
            cleaned[name] = _text(value, field=_("The place"), max_length=200)
        elif name == "notes":
            cleaned[name] = _text(value, field=_("The notes"), max_length=5000)
        elif name in ("starts_on", "ends_on"):
            cleaned[name] = _day(value, field=_("The first day") if name == "starts_on" else _("The last day"))
        elif name == "stall_fee":
            cleaned[name] = _fee(value)
        elif name == "currency":
            cleaned[name] = _text(value, field=_("The currency"), max_length=3, required=True).upper()
        elif name == "themes":
            cleaned[name] = _themes(value)
    return cleaned


def _check_days(event: MarketEvent) -> None:
    if event.ends_on < event.starts_on:
        raise InvalidInput(_("The last day (%(end)s) cannot lie before the first (%(start)s).")
                           % {"end": event.ends_on.isoformat(), "start": event.starts_on.isoformat()})
    if event.days > MAX_EVENT_DAYS:
        raise InvalidInput(_("A market event lasts at most %(max)s days.") % {"max": MAX_EVENT_DAYS})


def market_event_clean(*, event: MarketEvent | None = None, **fields) -> dict:
    """The fields as the services would store them, or InvalidInput: for forms that check before they save."""
    cleaned = _clean_fields(fields)
    probe = MarketEvent(**{name: getattr(event, name) for name in EVENT_FIELDS} if event is not None else {})
    for name, value in cleaned.items():
        setattr(probe, name, value)
    if probe.starts_on and probe.ends_on:
        _check_days(probe)
    return cleaned


def _lock(event: MarketEvent) -> MarketEvent:
    return MarketEvent.objects.select_for_update().get(pk=event.pk)


def _refuse_done(event: MarketEvent) -> None:
    if event.status == MarketEventStatus.DONE:
        raise Conflict(_("%(event)s is closed; its products, counts and checklist no longer change.")
                       % {"event": event.name})


# --- events -----------------------------------------------------------------------------------------------------


def market_event_create(*, name: str, starts_on, ends_on=None, place: str = "", stall_fee="0",
                        currency: str | None = None, themes=(), notes: str = "") -> MarketEvent:
    """A planned event; `ends_on` defaults to the first day (a one-day market)."""
    fields = _clean_fields({"name": name, "starts_on": starts_on, "ends_on": ends_on if ends_on else starts_on,
                            "place": place, "stall_fee": stall_fee,
                            "currency": currency or settings.PRODUCTION_CURRENCY, "themes": themes,
                            "notes": notes})
    event = MarketEvent(**fields, status=MarketEventStatus.PLANNED)
    _check_days(event)
    validate(event)
    event.save()
    return event


@transaction.atomic
def market_event_update(*, event: MarketEvent, **fields) -> MarketEvent:
    """Change the given fields of an event that is not closed."""
    locked = _lock(event)
    _refuse_done(locked)
    for name, value in _clean_fields(fields).items():
        setattr(locked, name, value)
    _check_days(locked)
    validate(locked)
    locked.save()
    return locked


@transaction.atomic
def market_event_transition(*, event: MarketEvent, status: str, by=None) -> MarketEvent:
    """Move the event to `status` (IllegalTransition otherwise). Done is reached by closing the event, which
    records its sales (market_event_close)."""
    locked = _lock(event)
    if status == MarketEventStatus.DONE and locked.status != MarketEventStatus.DONE:
        raise Conflict(_("Close the event to finish it: closing records its sales."))
    _move(locked, status)
    locked.save(update_fields=["status", "updated_at"])
    return locked


def _move(locked: MarketEvent, status: str) -> None:
    check_transition(MARKET_EVENT_TRANSITIONS, locked.status, status, what=_("The status of a market event"))
    locked.status = status


# --- products ---------------------------------------------------------------------------------------------------


@transaction.atomic
def market_event_product_set(*, event: MarketEvent, product: Product, target_units=_UNSET, taken_units=_UNSET,
                             returned_units=_UNSET) -> EventProduct:
    """Put a product on the event, or change its target or counts; arguments not given keep their value (a new
    line starts with target 0 and no counts)."""
    locked = _lock(event)
    _refuse_done(locked)
    if not isinstance(product, Product) or product.pk is None:
        raise InvalidInput(_("Choose a product from stock."))
    line = EventProduct.objects.select_for_update().filter(event=locked, product=product).first()
    if line is None:
        line = EventProduct(event=locked, product=product)
    if target_units is not _UNSET:
        line.target_units = event_units(target_units, field=_("The target"))
    if taken_units is not _UNSET:
        line.taken_units = event_units(taken_units, field=_("Units taken"), allow_none=True)
    if returned_units is not _UNSET:
        line.returned_units = event_units(returned_units, field=_("Units returned"), allow_none=True)
    _check_counts(line)
    validate(line)
    line.save()
    return line


def _check_counts(line: EventProduct) -> None:
    if line.returned_units is not None and line.taken_units is None:
        raise InvalidInput(_("%(sku)s: enter the units taken before the units returned.") % {"sku": line.product.sku})
    if line.returned_units is not None and line.returned_units > line.taken_units:
        raise InvalidInput(_("%(sku)s: %(returned)s units cannot come back when %(taken)s were taken.")
                           % {"sku": line.product.sku, "returned": line.returned_units, "taken": line.taken_units})


@transaction.atomic
def market_event_product_remove(*, line: EventProduct) -> None:
    _refuse_done(_lock(line.event))
    EventProduct.objects.filter(pk=line.pk).delete()


@transaction.atomic
def market_event_recommend(*, event: MarketEvent, today: datetime.date | None = None) -> list[EventProduct]:
    """Apply the recommendations (event_selectors.market_event_recommendations): a recommended product not on
    the event yet is added with the recommendation as its target; every recommended line records the
    recommendation, and targets staff set are kept. Returns the lines recommended."""
    locked = _lock(event)
    _refuse_done(locked)
    lines = []
    for row in event_selectors.market_event_recommendations(event=locked, today=today):
        line, created = EventProduct.objects.get_or_create(
            event=locked, product=row.product, defaults={"target_units": row.units, "recommended_units": row.units})
        if not created:
            line.recommended_units = row.units
            line.save(update_fields=["recommended_units"])
        lines.append(line)
    return lines


# --- checklist --------------------------------------------------------------------------------------------------


@transaction.atomic
def market_event_checklist_add(*, event: MarketEvent, text: str, assignee=None) -> EventChecklistItem:
    locked = _lock(event)
    _refuse_done(locked)
    last = EventChecklistItem.objects.filter(event=locked).aggregate(last=Max("position"))["last"]
    item = EventChecklistItem(event=locked, text=_text(text, field=_("The checklist item"), max_length=300,
                                                       required=True),
                              assignee=assignee, position=0 if last is None else last + 1)
    validate(item)
    item.save()
    return item


@transaction.atomic
def market_event_checklist_update(*, item: EventChecklistItem, text=_UNSET, assignee=_UNSET,
                                  done=_UNSET) -> EventChecklistItem:
    locked = EventChecklistItem.objects.select_for_update().select_related("event").get(pk=item.pk)
    _refuse_done(locked.event)
    if text is not _UNSET:
        locked.text = _text(text, field=_("The checklist item"), max_length=300, required=True)
    if assignee is not _UNSET:
        locked.assignee = assignee
    if done is not _UNSET and bool(done) != locked.done:
        locked.done = bool(done)
        locked.done_at = timezone.now() if locked.done else None
    validate(locked)
    locked.save()
    return locked


def market_event_checklist_toggle(*, item: EventChecklistItem) -> EventChecklistItem:
    """Tick an open item, or open a ticked one again."""
    current = EventChecklistItem.objects.filter(pk=item.pk).values_list("done", flat=True).first()
    return market_event_checklist_update(item=item, done=not current)


@transaction.atomic
def market_event_checklist_remove(*, item: EventChecklistItem) -> None:
    _refuse_done(item.event)
    EventChecklistItem.objects.filter(pk=item.pk).delete()


# --- shortfall → print jobs -------------------------------------------------------------------------------------


def market_event_due(*, event: MarketEvent) -> datetime.datetime:
    """When the event's print jobs are due: the start of the day before its first day, in the lab's time zone."""
    day = event.starts_on - datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class ShortfallResult:
    """What queueing the shortfall did: the jobs queued, and a sentence per product it could not queue."""

    def __init__(self) -> None:
        self.jobs: list[PrintJob] = []
        self.skipped: list[str] = []


@transaction.atomic
def market_event_queue_shortfall(*, event: MarketEvent, by=None,
                                 today: datetime.date | None = None) -> ShortfallResult:
    """Queue print jobs for what stock and the queue do not cover (see the module's docstring).

    A bought-in product, or a printed one whose variant has no current version, is not queued; the result
    says so. A job the queue refuses (a version that cannot be printed) is left out the same way.
    """
    locked = _lock(event)
    _refuse_done(locked)
    today = today or timezone.localdate()
    if locked.ends_on < today:
        raise InvalidInput(_("%(event)s is over; nothing is printed for it any more.") % {"event": locked.name})
    due = market_event_due(event=locked)
    per_plate = production_services.UNITS_PER_PLATE
    result = ShortfallResult()
    for row in event_selectors.market_event_readiness(event=locked).products:
        shortfall = row.shortfall
        if shortfall <= 0:
            continue
        product = row.line.product
        variant = product.variant
        if variant is None:
            result.skipped.append(_("%(sku)s: bought in, %(units)s units to buy.")
                                  % {"sku": product.sku, "units": shortfall})
            continue
        if variant.current_version_id is None:
            result.skipped.append(_("%(sku)s: its catalog variant has no version to print (%(units)s units "
                                    "short).") % {"sku": product.sku, "units": shortfall})
            continue
        plates = math.ceil(shortfall / per_plate)
        queued = []
        try:
            with transaction.atomic():
                while plates > 0:
                    copies = min(plates, MAX_COPIES)
                    queued.append(production_services.print_job_create(
                        version=variant.current_version, copies=copies, due_at=due, purpose=Purpose.BUSINESS,
                        reference=_("Market: %(event)s") % {"event": locked.name[:180]},
                        notes=_("%(units)s units of %(sku)s for %(event)s.")
                        % {"units": shortfall, "sku": product.sku, "event": locked},
                        queued_by=by))
                    plates -= copies
        except ApplicationError as exc:
            result.skipped.append(f"{product.sku}: {exc.message}")
        else:
            result.jobs.extend(queued)
    return result


# --- closing ----------------------------------------------------------------------------------------------------


def _sale_key(event: MarketEvent, line: EventProduct) -> str:
    return f"market-event-{event.pk}-product-{line.product_id}"


def _record_sale(event: MarketEvent, line: EventProduct, sold: int, by) -> Sale:
    """Record `sold` units of the line's product as market sales, from the locations holding most units first
    (one sale per location, at the same price); returns the first. InvalidInput when stock holds fewer."""
    product = line.product
    in_stock = list(ProductStock.objects.filter(product=product, quantity__gt=0).select_related("location")
                    .order_by("-quantity", "location_id"))
    total = sum(stock.quantity for stock in in_stock)
    if total < sold:
        raise InvalidInput(_("%(sku)s has %(stock)s units in stock; %(sold)s sold units cannot be recorded. Book "
                             "the missing units first.") % {"sku": product.sku, "stock": total, "sold": sold})
    first, left = None, sold
    for stock in in_stock:
        if left <= 0:
            break
        take = min(left, stock.quantity)
        sale = inventory_services.sale_record(
            product=product, quantity=take, unit_price=product.sale_price, sold_on=event.starts_on,
            channel=SalesChannel.MARKET, location=stock.location,
            idempotency_key=f"{_sale_key(event, line)}-at-{stock.location_id}", currency=product.currency,
            reference=(_("Market event %(id)s") % {"id": event.pk})[:100], source_type=SourceType.USER,
            source_id=f"market-event-{event.pk}", by=by)
        first = first or sale
        left -= take
    return first


def _apply_counts(lines: dict[int, EventProduct], counts: Mapping) -> None:
    if not isinstance(counts, Mapping):
        raise InvalidInput(_("The counts are given per product."))
    for key, value in counts.items():
        try:
            product_id = int(key)
        except (TypeError, ValueError):
            raise InvalidInput(_("%(key)r is not a product id.") % {"key": key}) from None
        line = lines.get(product_id)
        if line is None:
            raise InvalidInput(_("Product id %(id)s is not on this event.") % {"id": key})
        if not isinstance(value, Mapping):
            raise InvalidInput(_("Give the units taken and returned of product id %(id)s.") % {"id": key})
        if "taken" in value:
            line.taken_units = event_units(value["taken"], field=_("Units taken"), allow_none=True)
        if "returned" in value:
            line.returned_units = event_units(value["returned"], field=_("Units returned"), allow_none=True)


@transaction.atomic
def market_event_close(*, event: MarketEvent, counts: Mapping | None = None, by=None,
                       today: datetime.date | None = None) -> MarketEvent:
    """Close the event and record its sales (see the module's docstring).

    `counts`: {product id: {"taken": n, "returned": m}} over the counts already stored on the lines. A line
    without units taken went unsold (nothing taken); a line with units taken needs the units returned.
    Closing a closed event changes nothing and returns it.
    """
    locked = _lock(event)
    if locked.status == MarketEventStatus.DONE:
        return locked
    today = today or timezone.localdate()
    if locked.starts_on > today:
        raise InvalidInput(_("%(event)s begins on %(day)s; close it once it has taken place.")
                           % {"event": locked.name, "day": locked.starts_on.isoformat()})
    lines = {line.product_id: line for line in
             EventProduct.objects.select_for_update().filter(event=locked).select_related("product")}
    if counts:
        _apply_counts(lines, counts)
    for line in lines.values():
        _check_counts(line)
        if line.taken_units and line.returned_units is None:
            raise InvalidInput(_("%(sku)s: enter the units that came back (0 when all %(taken)s sold).")
                               % {"sku": line.product.sku, "taken": line.taken_units})
        validate(line)
    for line in sorted(lines.values(), key=lambda item: item.product.sku):
        product = line.product
        sold = line.sold_units or 0
        if sold > 0:
            if product.sale_price is None:
                raise InvalidInput(_("%(sku)s has no sale price; set it before closing the event.")
                                   % {"sku": product.sku})
            line.sale = _record_sale(locked, line, sold, by)
        line.unit_cost = product.unit_cost
        try:
            line.save()
        except IntegrityError:
            raise Conflict(_("%(sku)s: the sale is already linked to another event line.")
                           % {"sku": product.sku}) from None
    if locked.status == MarketEventStatus.PLANNED:
        _move(locked, MarketEventStatus.PREPARING)
    _move(locked, MarketEventStatus.DONE)
    locked.closed_at = timezone.now()
    locked.closed_by = by
    locked.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
    return locked

"""Market events for the lab's own systems (read keys of the organization of kind 'lab'); mounted by
production.api under the same root:

- GET /production/events (filters `status`: planned, preparing or done; `upcoming`: true for events not over
  and not done, false for the others): the events, latest first, each with its products, checklist,
  readiness and, once closed, results;
- GET /production/events/{event_id}: one event.

Partners' and customers' keys are refused (403): events, their sales and margins are the lab's business.
"""

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Query, Router
from ninja.pagination import paginate

from fablab.api_auth import lab_read_key
from fablab.api_pagination import Pagination
from fablab.exceptions import InvalidInput
from production import event_selectors
from production.choices import MarketEventStatus
from production.event_schemas import MarketEventFilterIn, MarketEventOut
from production.schemas import MAX_ID

router = Router(tags=["market events"], auth=lab_read_key)


@router.get("/production/events", response=list[MarketEventOut], summary="Market events, latest first")
@paginate(Pagination)
def market_event_list(request: HttpRequest, filters: Query[MarketEventFilterIn]):
    """Each event with its products (target, units taken and returned, in stock, still to come from the print
    queue, shortfall, and its results), its checklist and its readiness; `results` once it is closed."""
    status = filters.status or ""
    if status and status not in MarketEventStatus.values:
        raise InvalidInput(_("status must be one of %(choices)s.") % {"choices": ", ".join(MarketEventStatus.values)})
    return event_selectors.market_event_list(status=status, upcoming=filters.upcoming)


@router.get("/production/events/{event_id}", response=MarketEventOut, summary="One market event")
def market_event_detail(request: HttpRequest, event_id: int = Path(..., ge=1, le=MAX_ID)):
    return event_selectors.market_event_get(event_id=event_id)

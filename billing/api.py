"""Billing for API clients: the organization's plan and its usage."""

from django.http import HttpRequest
from ninja import Router

from billing import selectors
from billing.schemas import UsageOut
from fablab.api_auth import tenant

router = Router(tags=["billing"])


@router.get("/usage", response=UsageOut, summary="The plan and its scan usage this period and today",
            description="`limit` is null where the plan has no limit; `day.resets_at` is the next midnight in "
                        "the organization's time zone; `overage_units` are scans above the period's allowance "
                        "(billed per unit).")
def usage(request: HttpRequest):
    return selectors.usage_summary(organization=tenant(request))

"""Portal pages of billing: plans, the current plan, usage."""

from django.http import HttpResponse
from django.shortcuts import render

from billing import selectors
from fablab.views import with_organization


@with_organization
def overview(request, organization, membership) -> HttpResponse:
    return render(request, "billing/overview.html", {
        "organization": organization,
        "plans": selectors.plan_list(),
        "usage": selectors.usage_summary(organization=organization),
        "time_zone": selectors.organization_time_zone(organization).key,
    })

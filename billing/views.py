"""Portal pages of billing: plans, the current plan, usage; subscribing and managing it through Stripe."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from billing import selectors, services
from fablab.choices import MembershipRole
from fablab.exceptions import ApplicationError
from fablab.views import with_organization


def _is_owner(membership) -> bool:
    return membership is not None and membership.role == MembershipRole.OWNER


@with_organization
def overview(request, organization, membership) -> HttpResponse:
    usage = selectors.usage_summary(organization=organization)
    owner = _is_owner(membership)
    return render(request, "billing/overview.html", {
        "organization": organization,
        "plans": selectors.plan_list(),
        "usage": usage,
        "time_zone": selectors.organization_time_zone(organization).key,
        "can_subscribe": owner and usage["source"] != "stripe",
        "can_manage": owner and selectors.stripe_customer_get(organization=organization) is not None,
        "invoices": selectors.invoice_list(organization=organization) if owner else [],
    })


@require_POST
@with_organization
def checkout(request, organization, membership, plan_key: str) -> HttpResponse:
    """Subscribe: off to a Stripe Checkout Session for the plan (owners of the organization only)."""
    if not _is_owner(membership):
        raise PermissionDenied(_("Only an owner of the organization can subscribe."))
    overview_url = request.build_absolute_uri(reverse("billing:overview"))
    try:
        url = services.subscription_checkout_start(
            organization=organization, plan_key=plan_key,
            success_url=request.build_absolute_uri(reverse("billing:checkout_done")), cancel_url=overview_url)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    return redirect(url)


@with_organization
def checkout_done(request, organization, membership) -> HttpResponse:
    """Back from Checkout. Grants nothing: the plan changes when Stripe's webhook confirms the subscription."""
    messages.info(request, _("Thank you. Your plan changes as soon as Stripe confirms the payment, usually "
                             "within a minute; reload this page to see it."))
    return redirect("billing:overview")


@require_POST
@with_organization
def manage(request, organization, membership) -> HttpResponse:
    """Manage billing: off to Stripe's Customer Portal (card, cancel, invoices), owners only."""
    if not _is_owner(membership):
        raise PermissionDenied(_("Only an owner of the organization can manage billing."))
    try:
        url = services.billing_portal_start(organization=organization,
                                            return_url=request.build_absolute_uri(reverse("billing:overview")))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    return redirect(url)

"""Portal pages of the organization: home, members, invitations, API keys, the audit log, and data rights
(deleting one's account; an organization's export, ownership and deletion)."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as Forbidden
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from fablab import selectors, services
from fablab.choices import MANAGING_ROLES, MembershipRole
from fablab.exceptions import ApplicationError, NotFound, PermissionDenied
from fablab.forms import (
    AccountDeleteForm,
    ApiKeyForm,
    InvitationForm,
    OrganizationDeleteForm,
    OwnershipTransferForm,
)

ORGANIZATION_SESSION_KEY = "fablab_organization_id"
INVITATION_SESSION_KEY = "fablab_invitation_token"
NEW_API_KEY_SESSION_KEY = "fablab_new_api_key"
AUDIT_LOG_PAGE_SIZE = 50


def with_organization(view):
    """Log-in required; passes the organization the user is working in, and their membership."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        organization = selectors.organization_get_for_user(
            user=request.user, organization_id=request.session.get(ORGANIZATION_SESSION_KEY)
        )
        if organization is None:
            return render(request, "portal/no_organization.html")
        membership = selectors.membership_get(organization=organization, user=request.user)
        try:
            return view(request, organization, membership, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("portal:home")

    return wrapper


def _home_with_form_errors(request, form, *, labelled: bool = False) -> HttpResponse:
    """Back to the home page, where each error of the refused form is a message (after its field's label)."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if labelled else error)
    return redirect("portal:home")


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "portal/landing.html")
    return organization_home(request)


@with_organization
def organization_home(request, organization, membership) -> HttpResponse:
    can_manage = membership.role in MANAGING_ROLES
    context = {
        "is_owner": membership.role == MembershipRole.OWNER,
        "organization": organization,
        "membership": membership,
        "can_manage": can_manage,
        "organizations": selectors.organization_list_for_user(user=request.user),
        "members": selectors.membership_list(organization=organization),
        "invitations": selectors.invitation_list_open(organization=organization) if can_manage else [],
        "api_keys": selectors.api_key_list(organization=organization) if can_manage else [],
        "invitation_form": InvitationForm(),
        "api_key_form": ApiKeyForm(organization=organization),
        "new_api_key": request.session.pop(NEW_API_KEY_SESSION_KEY, None),
    }
    return render(request, "portal/home.html", context)


@require_POST
@login_required
def organization_switch(request: HttpRequest) -> HttpResponse:
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        raise Http404(_("No such organization.")) from None
    organization = selectors.organization_list_for_user(user=request.user).filter(pk=organization_id).first()
    if organization is None:
        raise Http404(_("No such organization."))
    request.session[ORGANIZATION_SESSION_KEY] = organization.pk
    return redirect("portal:home")


@require_POST
@with_organization
def invitation_create(request, organization, membership) -> HttpResponse:
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _home_with_form_errors(request, form)
    invitation, _token = services.invitation_create(
        organization=organization,
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        invited_by=request.user,
        accept_url_for=lambda token: request.build_absolute_uri(reverse("portal:invitation_accept", args=[token])),
    )
    messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    return redirect("portal:home")


@require_POST
@with_organization
def invitation_revoke(request, organization, membership, invitation_id: int) -> HttpResponse:
    invitation = selectors.invitation_get_for_organization(organization=organization, invitation_id=invitation_id)
    services.invitation_revoke(invitation=invitation, by=request.user)
    messages.success(request, _("Invitation for %(email)s withdrawn.") % {"email": invitation.email})
    return redirect("portal:home")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = services.invitation_get_open(token=token)
    except ApplicationError as exc:
        return render(request, "portal/invitation_invalid.html", {"reason": exc.message}, status=404)
    if not request.user.is_authenticated:
        # Remembered so that a sign-up from here joins this organization.
        request.session[INVITATION_SESSION_KEY] = token
        return render(request, "portal/invitation.html", {"invitation": invitation})
    if request.method != "POST":
        return render(request, "portal/invitation.html", {"invitation": invitation})
    try:
        membership = services.invitation_accept(token=token, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return render(request, "portal/invitation.html", {"invitation": invitation}, status=403)
    request.session[ORGANIZATION_SESSION_KEY] = membership.organization_id
    messages.success(request, _("Welcome to %(org)s.") % {"org": membership.organization})
    return redirect("portal:home")


@require_POST
@with_organization
def member_remove(request, organization, membership, membership_id: int) -> HttpResponse:
    target = selectors.membership_get_for_organization(organization=organization, membership_id=membership_id)
    services.membership_remove(membership=target, by=request.user)
    messages.success(request, _("%(email)s was removed.") % {"email": target.user.email})
    return redirect("portal:home")


@require_POST
@with_organization
def api_key_create(request, organization, membership) -> HttpResponse:
    form = ApiKeyForm(request.POST, organization=organization)
    if not form.is_valid():
        return _home_with_form_errors(request, form, labelled=True)
    try:
        api_key, raw_key = services.member_api_key_create(
            organization=organization, by=request.user, name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"], expires_at=form.cleaned_data["expires_at"],
        )
    except PermissionDenied:
        raise Http404(_("No such page.")) from None  # members do not see key management at all
    # Shown once on the next page, then gone: only its hash is stored.
    request.session[NEW_API_KEY_SESSION_KEY] = {"name": api_key.name, "key": raw_key}
    return redirect("portal:home")


@require_POST
@with_organization
def api_key_revoke(request, organization, membership, key_id: int) -> HttpResponse:
    api_key = selectors.api_key_get_for_organization(organization=organization, key_id=key_id)
    try:
        services.member_api_key_revoke(api_key=api_key, by=request.user)
    except PermissionDenied:
        raise Http404(_("No such page.")) from None
    messages.success(request, _("API key %(name)s revoked.") % {"name": api_key.name})
    return redirect("portal:home")


@with_organization
def audit_log(request, organization, membership) -> HttpResponse:
    """The organization's audit log: its owners only (403 for its admins and members)."""
    if membership.role != MembershipRole.OWNER:
        raise Forbidden(_("Only the owners of %(org)s can see its audit log.") % {"org": organization})
    page = Paginator(selectors.audit_entry_list(organization=organization), AUDIT_LOG_PAGE_SIZE).get_page(
        request.GET.get("page"))
    return render(request, "portal/audit_log.html", {"organization": organization, "page": page})


# --- Data rights: the account's deletion, the organization's export, ownership and deletion ----------------


def _owner_only(organization, membership) -> None:
    if membership.role != MembershipRole.OWNER:
        raise Forbidden(_("Only the owners of %(org)s can do this.") % {"org": organization})


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete one's own account after typing the password again (GET: the page that asks)."""
    form = AccountDeleteForm(request.POST or None)
    sole_owner_of = selectors.organization_list_sole_owner(user=request.user)
    context = {"form": form, "sole_owner_of": sole_owner_of}
    if request.method != "POST":
        return render(request, "portal/account_delete.html", context)
    if form.is_valid():
        try:
            services.user_delete(user=request.user, password=form.cleaned_data["password"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            logout(request)
            messages.success(request, _("Your account has been deleted."))
            return redirect("portal:home")
    return render(request, "portal/account_delete.html", context, status=400)


@with_organization
def organization_data(request, organization, membership) -> HttpResponse:
    """The owners' page for the organization's data: exports, handing over ownership, deleting it."""
    _owner_only(organization, membership)
    return _organization_data_page(request, organization, membership)


def _organization_data_page(request, organization, membership, *, delete_form=None, transfer_form=None,
                            status: int = 200) -> HttpResponse:
    candidates = selectors.membership_list(organization=organization).exclude(role=MembershipRole.OWNER)
    context = {
        "organization": organization,
        "membership": membership,
        "exports": selectors.organization_export_list(organization=organization)[:20],
        "export_valid_hours": settings.ORGANIZATION_EXPORT_VALID_HOURS,
        "delete_form": delete_form or OrganizationDeleteForm(),
        "transfer_form": transfer_form or OwnershipTransferForm(candidates=candidates),
        "has_candidates": candidates.exists(),
    }
    return render(request, "portal/organization_data.html", context, status=status)


@require_POST
@with_organization
def organization_export_request(request, organization, membership) -> HttpResponse:
    _owner_only(organization, membership)
    try:
        services.organization_export_request(organization=organization, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The export is being prepared. It appears below when it is ready; reload the "
                                    "page in a few minutes."))
    return redirect("portal:organization_data")


@with_organization
def organization_export_download(request, organization, membership, export_id: int) -> HttpResponse:
    _owner_only(organization, membership)
    export = selectors.organization_export_get(organization=organization, export_id=export_id)
    try:
        handle = services.organization_export_open(export=export, by=request.user)
    except PermissionDenied as exc:
        raise Forbidden(exc.message) from None
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _organization_data_page(request, organization, membership, status=410)
    filename = f"{organization.slug}-export-{export.created_at:%Y%m%d}.zip"
    return FileResponse(handle, as_attachment=True, filename=filename, content_type="application/zip")


@require_POST
@with_organization
def ownership_transfer(request, organization, membership) -> HttpResponse:
    _owner_only(organization, membership)
    candidates = selectors.membership_list(organization=organization).exclude(role=MembershipRole.OWNER)
    form = OwnershipTransferForm(request.POST, candidates=candidates)
    if not form.is_valid():
        return _organization_data_page(request, organization, membership, transfer_form=form, status=400)
    target = selectors.membership_get_for_organization(organization=organization,
                                                       membership_id=form.cleaned_data["membership"])
    try:
        services.ownership_transfer(organization=organization, by=request.user, to=target,
                                    keep_ownership=form.cleaned_data["keep_ownership"])
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _organization_data_page(request, organization, membership, transfer_form=form, status=400)
    messages.success(request, _("%(email)s is now an owner of %(org)s.") % {
        "email": target.user.email, "org": organization})
    return redirect("portal:home")


@require_POST
@with_organization
def organization_delete(request, organization, membership) -> HttpResponse:
    _owner_only(organization, membership)
    form = OrganizationDeleteForm(request.POST)
    if form.is_valid():
        try:
            services.organization_delete_request(
                organization=organization, by=request.user, password=form.cleaned_data["password"],
                confirm_name=form.cleaned_data["name"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            request.session.pop(ORGANIZATION_SESSION_KEY, None)
            messages.success(request, _("%(org)s is being deleted with its data and files.") % {"org": organization})
            return redirect("portal:home")
    return _organization_data_page(request, organization, membership, delete_form=form, status=400)

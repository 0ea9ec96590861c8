"""Every non-trivial read of tenancy data, and the dashboard's tenancy and task figures."""

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.models import Failure, OrmQ, Schedule, Success

from fablab.choices import OrganizationKind
from fablab.exceptions import NotFound
from fablab.models import ApiKey, AuditEntry, Invitation, Membership, Organization, OrganizationExport


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    """The organizations the portal offers the user: those being deleted are gone already for them."""
    return Organization.objects.for_user(user).filter(deletion_requested_at__isnull=True).order_by("name")


def organization_get_for_user(*, user, organization_id: int | None) -> Organization | None:
    """The organization the portal shows: the chosen one if the user belongs to it, else the first."""
    organizations = organization_list_for_user(user=user)
    if organization_id is not None:
        chosen = organizations.filter(pk=organization_id).first()
        if chosen is not None:
            return chosen
    return organizations.first()


def membership_get(*, organization: Organization, user) -> Membership | None:
    return Membership.objects.filter(organization=organization, user=user).first()


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_organization(organization).select_related("user").order_by("role", "user__email")


def membership_get_for_organization(*, organization: Organization, membership_id: int) -> Membership:
    membership = membership_list(organization=organization).filter(pk=membership_id).first()
    if membership is None:
        raise NotFound(_("No member with id %(id)s.") % {"id": membership_id})
    return membership


def invitation_list_open(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.for_organization(organization).filter(
        accepted_at__isnull=True, expires_at__gt=timezone.now()
    )


def invitation_get_for_organization(*, organization: Organization, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.for_organization(organization).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound(_("No invitation with id %(id)s.") % {"id": invitation_id})
    return invitation


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_organization(organization).order_by("-created_at")


def api_key_get_for_organization(*, organization: Organization, key_id: int) -> ApiKey:
    api_key = api_key_list(organization=organization).filter(pk=key_id).first()
    if api_key is None:
        raise NotFound(_("No API key with id %(id)s.") % {"id": key_id})
    return api_key


def audit_entry_list(*, organization: Organization) -> QuerySet[AuditEntry]:
    """The organization's own audit log, newest first: never another organization's entries."""
    return AuditEntry.objects.for_organization(organization).order_by("-created_at", "-pk")


def organization_list_sole_owner(*, user) -> list[Organization]:
    """The organizations in which the user is the only owner (they cannot leave them without an owner)."""
    from fablab.choices import MembershipRole

    owned = organization_list_for_user(user=user).filter(
        memberships__user=user, memberships__role=MembershipRole.OWNER)
    return [org for org in owned
            if not Membership.objects.filter(organization=org, role=MembershipRole.OWNER).exclude(user=user).exists()]


def organization_export_list(*, organization: Organization) -> QuerySet[OrganizationExport]:
    return OrganizationExport.objects.for_organization(organization).select_related("requested_by")


def organization_export_get(*, organization: Organization, export_id: int) -> OrganizationExport:
    export = organization_export_list(organization=organization).select_related("organization").filter(
        pk=export_id).first()
    if export is None:
        raise NotFound(_("No such export."))
    return export


def tenancy_kpis() -> dict:
    now = timezone.now()
    orgs = Organization.objects.aggregate(
        customers=Count("id", filter=Q(kind=OrganizationKind.CUSTOMER)),
        partners=Count("id", filter=Q(kind=OrganizationKind.PARTNER)),
    )
    return {
        "customers": orgs["customers"],
        "partners": orgs["partners"],
        "members": Membership.objects.count(),
        "active_api_keys": ApiKey.objects.filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .count(),
        "open_invitations": Invitation.objects.filter(accepted_at__isnull=True, expires_at__gt=now).count(),
    }


def task_kpis(*, window: timedelta = timedelta(hours=24)) -> dict:
    since = timezone.now() - window
    return {
        "queued": OrmQ.objects.count(),
        "succeeded": Success.objects.filter(stopped__gte=since).count(),
        "failed": Failure.objects.filter(stopped__gte=since).count(),
        "schedules": Schedule.objects.count(),
    }

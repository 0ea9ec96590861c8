"""Every write to tenancy data: organizations, memberships, invitations, API keys, and the audit log."""

import hashlib
import hmac
import ipaddress
import secrets
import string
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from fablab.choices import MANAGING_ROLES, ApiKeyScope, AuditAction, MembershipRole, OrganizationKind
from fablab.exceptions import ApplicationError, Conflict, InvalidInput, NotFound, PermissionDenied
from fablab.models import ApiKey, AuditEntry, Invitation, Membership, Organization
from fablab.validation import validate

User = get_user_model()

_ALPHANUMERIC = string.ascii_letters + string.digits
API_KEY_PREFIX_LENGTH = 8
API_KEY_SECRET_LENGTH = 40
# A key where it stands in other text, e.g. a URL path; api_key_authenticate checks it exactly.
API_KEY_PATTERN = r"fl_[A-Za-z0-9]+_[A-Za-z0-9]+"
# last_used_at is written at most this often per key, so reads do not cost a write each.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthenticationFailed(ApplicationError):
    status = 401
    title = "Authentication failed"
    code = "authentication-failed"


def _random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- Audit log ---------------------------------------------------------------------------

USER_AGENT_MAX_LENGTH = AuditEntry._meta.get_field("user_agent").max_length
TARGET_TEXT_MAX_LENGTH = AuditEntry._meta.get_field("target_text").max_length


def _actor_label(*, user, api_key) -> str:
    if user is not None:
        return user.email or user.get_username()
    if api_key is not None:
        return f"{api_key.name} (fl_{api_key.prefix}_…)"
    return ""


def _valid_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def audit_record(
    *, action: str, organization: Organization | None = None, target=None, target_type: str = "",
    target_id: str | int = "", target_text: str = "", actor=None, api_key: ApiKey | None = None,
    extra: dict | None = None,
) -> AuditEntry:
    """Append one entry to the audit log; entries are never changed or deleted afterwards.

    `target`: the model instance acted on (its type, id and text are taken from it), or name it with
    `target_type`, `target_id` and `target_text`. Who acted and from where come from the current
    request (fablab.audit) unless `actor` or `api_key` are given: the logged-in person, or the API
    key the request presented. Outside a request (tasks, Stripe's events) an entry may have no actor.
    """
    from fablab.audit import current_request
    from fablab.security import client_ip

    if action not in AuditAction.values:
        raise InvalidInput(_("Unknown audit action %(action)r.") % {"action": action})
    request = current_request()
    if actor is None and api_key is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            api_key = auth
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or target.pk
        target_text = target_text or str(target)
    address = _valid_address(client_ip(request)) if request is not None else None
    return AuditEntry.objects.create(
        action=action,
        actor=actor,
        api_key=api_key,
        actor_label=_actor_label(user=actor, api_key=api_key)[:200],
        organization=organization,
        target_type=target_type[:64],
        target_id=str(target_id if target_id is not None else "")[:64],
        target_text=(target_text or "")[:TARGET_TEXT_MAX_LENGTH],
        ip_address=address,
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[:USER_AGENT_MAX_LENGTH],
        extra=extra or {},
    )


# --- Organizations and memberships ------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60].strip("-") or "organization"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{_random_string(4).lower()}"
    return slug


@transaction.atomic
def organization_create(*, name: str, kind: str, owner=None) -> Organization:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("An organization needs a name."))
    if kind not in OrganizationKind.values:
        raise InvalidInput(_("Unknown organization kind %(kind)r.") % {"kind": kind})
    organization = Organization(name=name, kind=kind, slug=_unique_slug(name))
    validate(organization)
    organization.save()
    if owner is not None:
        membership_add(organization=organization, user=owner, role=MembershipRole.OWNER)
    return organization


def membership_add(*, organization: Organization, user, role: str = MembershipRole.MEMBER) -> Membership:
    if role not in MembershipRole.values:
        raise InvalidInput(_("Unknown role %(role)r.") % {"role": role})
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise Conflict(_("%(user)s is already a member of %(org)s.") % {"user": user.email, "org": organization})
    membership = Membership(organization=organization, user=user, role=role)
    validate(membership)
    membership.save()
    return membership


def _require_manager(*, organization: Organization, user) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise NotFound(_("No such organization."))
    if membership.role not in MANAGING_ROLES:
        raise PermissionDenied(_("Only owners and admins of %(org)s can do this.") % {"org": organization})
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by) -> None:
    """Remove a member. An organization always keeps at least one owner."""
    _require_manager(organization=membership.organization, user=by)
    locked = list(
        Membership.objects.select_for_update().filter(organization=membership.organization, role=MembershipRole.OWNER)
    )
    if membership.role == MembershipRole.OWNER and len(locked) <= 1:
        raise Conflict(_("The last owner of an organization cannot be removed."))
    membership.delete()


# --- Sign-up ----------------------------------------------------------------------------


@transaction.atomic
def user_onboard(*, user, organization_name: str = "", invitation_token: str = "") -> Membership:
    """Give a newly signed-up user an organization.

    With a valid invitation for the user's address the user joins the inviting
    organization; otherwise a new customer organization is created with the user
    as its owner.
    """
    if invitation_token:
        try:
            return invitation_accept(token=invitation_token, user=user)
        except ApplicationError:
            pass  # an expired or foreign invitation must not block the sign-up
    name = organization_name.strip() or _("%(email)s's workshop") % {"email": user.email.split("@")[0]}
    organization = organization_create(name=name, kind=OrganizationKind.CUSTOMER, owner=user)
    return Membership.objects.get(organization=organization, user=user)


# --- Invitations ------------------------------------------------------------------------


def _send_invitation_email(*, invitation: Invitation, accept_url: str) -> None:
    context = {"invitation": invitation, "accept_url": accept_url, "organization": invitation.organization}
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + render_to_string(
        "portal/email/invitation_subject.txt", context
    ).strip()
    body = render_to_string("portal/email/invitation_message.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by, accept_url_for
) -> tuple[Invitation, str]:
    """Invite `email` to `organization` and send the e-mail once the row is committed.

    `accept_url_for(token)` builds the absolute link put in the e-mail. Returns the
    invitation and its token (the token is not stored, only its hash).
    """
    _require_manager(organization=organization, user=invited_by)
    email = User.objects.normalize_email((email or "").strip())
    if role not in (MembershipRole.MEMBER, MembershipRole.ADMIN):
        raise InvalidInput(_("Invitations can make members or admins, not %(role)s.") % {"role": role})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict(_("%(email)s is already a member.") % {"email": email})
    Invitation.objects.filter(
        organization=organization, email__iexact=email, accepted_at__isnull=True, expires_at__lte=timezone.now()
    ).delete()
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash=_sha256(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    if Invitation.objects.filter(organization=organization, email__iexact=email, accepted_at__isnull=True).exists():
        raise Conflict(_("%(email)s has already been invited.") % {"email": email})
    validate(invitation, exclude=["token_hash"])
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:
        raise Conflict(_("%(email)s has already been invited.") % {"email": email}) from None
    accept_url = accept_url_for(token)
    transaction.on_commit(lambda: _send_invitation_email(invitation=invitation, accept_url=accept_url))
    return invitation, token


def invitation_get_open(*, token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=_sha256(token or ""), accepted_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise NotFound(_("This invitation does not exist or has already been used."))
    if invitation.expires_at <= timezone.now():
        raise Conflict(_("This invitation has expired. Ask for a new one."))
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user) -> Membership:
    invitation = invitation_get_open(token=token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise NotFound(_("This invitation does not exist or has already been used."))
    if invitation.email.lower() != (user.email or "").lower():
        raise PermissionDenied(
            _("This invitation was sent to %(email)s. Log in with that address to accept it.")
            % {"email": invitation.email}
        )
    membership = Membership.objects.filter(organization=invitation.organization, user=user).first()
    if membership is None:
        membership = membership_add(organization=invitation.organization, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


def invitation_revoke(*, invitation: Invitation, by) -> None:
    _require_manager(organization=invitation.organization, user=by)
    if invitation.accepted_at is not None:
        raise Conflict(_("This invitation has already been accepted."))
    invitation.delete()


def invitations_purge_expired(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete open invitations that expired more than `older_than` ago."""
    deleted, _ = Invitation.objects.filter(
        accepted_at__isnull=True, expires_at__lt=timezone.now() - older_than
    ).delete()
    return deleted


# --- API keys ---------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, scope: str = ApiKeyScope.READ,
    expires_at: datetime | None = None, created_by=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never available again."""
    if scope not in ApiKeyScope.values:
        raise InvalidInput(_("Unknown scope %(scope)r; use 'read', 'write' or 'printer_host'.") % {"scope": scope})
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(_("The expiry date must lie in the future."))
    prefix = _random_string(API_KEY_PREFIX_LENGTH)
    raw_key = f"fl_{prefix}_{_random_string(API_KEY_SECRET_LENGTH)}"
    api_key = ApiKey(
        organization=organization,
        name=(name or "").strip(),
        prefix=prefix,
        hashed_key=_sha256(raw_key),
        scope=scope,
        expires_at=expires_at,
        created_by=created_by,
    )
    validate(api_key, exclude=["prefix", "hashed_key"])
    api_key.save()
    audit_record(action=AuditAction.API_KEY_CREATED, organization=organization, target=api_key,
                 actor=created_by, extra={"scope": scope})
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action=AuditAction.API_KEY_REVOKED, organization=api_key.organization, target=api_key)
    return api_key


def member_api_key_create(*, organization: Organization, by, name: str, scope: str = ApiKeyScope.READ,
                          expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A key made by a person of the organization: only its owners and admins may."""
    _require_manager(organization=organization, user=by)
    return api_key_create(organization=organization, name=name, scope=scope, expires_at=expires_at, created_by=by)


def member_api_key_revoke(*, api_key: ApiKey, by) -> ApiKey:
    _require_manager(organization=api_key.organization, user=by)
    return api_key_revoke(api_key=api_key)


def api_key_authenticate(*, raw_key: str) -> ApiKey:
    """Resolve a presented key, or raise AuthenticationFailed saying why not."""
    parts = (raw_key or "").strip().split("_")
    if (
        len(parts) != 3
        or parts[0] != "fl"
        or len(parts[1]) != API_KEY_PREFIX_LENGTH
        or len(parts[2]) != API_KEY_SECRET_LENGTH
        or not (parts[1] + parts[2]).isascii()
        or not (parts[1] + parts[2]).isalnum()
    ):
        raise AuthenticationFailed(
            _("Malformed API key. Keys look like fl_XXXXXXXX_ followed by 40 letters and digits.")
        )
    api_key = ApiKey.objects.select_related("organization").filter(prefix=parts[1]).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, _sha256(raw_key.strip())):
        raise AuthenticationFailed(_("Unknown API key."))
    if api_key.revoked_at is not None:
        raise AuthenticationFailed(_("This API key has been revoked."))
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise AuthenticationFailed(_("This API key expired on %(date)s.") % {"date": api_key.expires_at.date()})
    if not api_key.organization.is_active:
        raise AuthenticationFailed(_("The organization of this API key is deactivated."))
    if api_key.last_used_at is None or now - api_key.last_used_at >= API_KEY_LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key



# --- Background task housekeeping -------------------------------------------------------


def task_results_prune(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete records of finished background tasks older than `older_than`."""
    from django_q.models import Task

    deleted, _ = Task.objects.filter(stopped__lt=timezone.now() - older_than).delete()
    return deleted

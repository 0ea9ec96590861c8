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
from django.db.models import CASCADE, SET_NULL, ProtectedError, RestrictedError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from fablab.choices import (
    MANAGING_ROLES,
    ApiKeyScope,
    AuditAction,
    ExportStatus,
    MembershipRole,
    OrganizationKind,
)
from fablab.exceptions import ApplicationError, Conflict, InvalidInput, NotFound, PermissionDenied
from fablab.models import ApiKey, AuditEntry, Invitation, Membership, Organization, OrganizationExport
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


# --- Data rights: ownership, account deletion, organization export and deletion ---------------------------

# An export still queued or running after this long is taken for lost: the owner may ask for a new one.
EXPORT_STALE_AFTER = timedelta(hours=6)
EXPORT_COPY_CHUNK = 1024 * 1024


def _check_password(*, user, password: str) -> None:
    if not password or not user.check_password(password):
        raise InvalidInput(_("The password is not correct. Nothing was changed."))


def _require_owner(*, organization: Organization, user) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise NotFound(_("No such organization."))
    if membership.role != MembershipRole.OWNER:
        raise PermissionDenied(_("Only the owners of %(org)s can do this.") % {"org": organization})
    return membership


def _enqueue(func: str, *args, task_name: str) -> None:
    from django_q.tasks import async_task

    async_task(func, *args, task_name=task_name)


@transaction.atomic
def ownership_transfer(*, organization: Organization, by, to: Membership, keep_ownership: bool = False) -> Membership:
    """Make the member `to` an owner of the organization; `by` (an owner) becomes an admin unless `keep_ownership`."""
    owners = {m.user_id: m for m in Membership.objects.select_for_update().filter(
        organization=organization, role=MembershipRole.OWNER)}
    current = owners.get(getattr(by, "pk", None))
    if current is None:
        _require_owner(organization=organization, user=by)  # says 404 or 403, as it applies
        raise PermissionDenied(_("Only the owners of %(org)s can do this.") % {"org": organization})
    if to.organization_id != organization.pk:
        raise NotFound(_("No such member."))
    if to.pk == current.pk:
        raise InvalidInput(_("Choose another member: you already own %(org)s.") % {"org": organization})
    if to.role == MembershipRole.OWNER:
        raise Conflict(_("%(email)s is already an owner of %(org)s.") % {"email": to.user.email, "org": organization})
    previous_role = to.role
    to.role = MembershipRole.OWNER
    validate(to)
    to.save(update_fields=["role", "updated_at"])
    if not keep_ownership:
        current.role = MembershipRole.ADMIN
        current.save(update_fields=["role", "updated_at"])
    audit_record(action=AuditAction.OWNERSHIP_TRANSFERRED, organization=organization, target=to.user, actor=by,
                 extra={"from": _actor_label(user=by, api_key=None), "previous_role": previous_role,
                        "kept_ownership": keep_ownership})
    return to


@transaction.atomic
def user_delete(*, user, password: str) -> None:
    """Delete a person's own account once they have typed their password again.

    Refused while they are the only owner of an organization (it would be left without one): they hand the
    ownership over or delete the organization first. Their memberships, e-mail addresses and the user row
    go; rows the business keeps (sales and stock movements, print jobs, invoices, the audit log) stay, with
    their link to the person emptied.
    """
    if user is None or not user.is_authenticated:
        raise PermissionDenied(_("Log in to delete your account."))
    _check_password(user=user, password=password)
    if user.is_staff or user.is_superuser:
        raise PermissionDenied(_("Staff accounts are removed by a manager in the admin, not from the portal."))
    memberships = list(Membership.objects.select_for_update().filter(user=user).select_related("organization"))
    sole = []
    for membership in memberships:
        if membership.role != MembershipRole.OWNER or membership.organization.deletion_requested_at is not None:
            continue
        others = (Membership.objects.select_for_update()
                  .filter(organization_id=membership.organization_id, role=MembershipRole.OWNER).exclude(user=user))
        if not others.exists():
            sole.append(membership.organization.name)
    if sole:
        raise Conflict(_(
            "You are the only owner of %(orgs)s. Make another member an owner, or delete the organization, "
            "before you delete your account."
        ) % {"orgs": ", ".join(sorted(sole))})
    for membership in memberships:
        audit_record(action=AuditAction.ACCOUNT_DELETED, organization=membership.organization, target=user,
                     actor=user, extra={"role": membership.role})
    if not memberships:
        audit_record(action=AuditAction.ACCOUNT_DELETED, target=user, actor=user)
    user.delete()


@transaction.atomic
def organization_export_request(*, organization: Organization, by) -> OrganizationExport:
    """Queue an export of everything the organization owns; its owners download it once it is ready."""
    _require_owner(organization=organization, user=by)
    if Organization.objects.filter(pk=organization.pk, deletion_requested_at__isnull=False).exists():
        raise Conflict(_("%(org)s is being deleted.") % {"org": organization})
    if OrganizationExport.objects.filter(
        organization=organization, status__in=[ExportStatus.PENDING, ExportStatus.RUNNING],
        created_at__gt=timezone.now() - EXPORT_STALE_AFTER,
    ).exists():
        raise Conflict(_("An export of %(org)s is already being prepared; it appears on this page when it is "
                         "ready.") % {"org": organization})
    export = OrganizationExport(organization=organization, requested_by=by)
    validate(export, exclude=["file"])
    export.save()
    audit_record(action=AuditAction.EXPORT_REQUESTED, organization=organization, target=export, actor=by)
    transaction.on_commit(lambda: _enqueue("fablab.tasks.build_organization_export", export.pk,
                                           task_name=f"organization export {export.pk}"))
    return export


def _write_json_rows(archive, arcname: str, rows) -> int:
    """Write `rows` (dicts) as one JSON array into the archive, row by row: no table is held in memory whole."""
    import io
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    count = 0
    with archive.open(arcname, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
        out.write("[")
        for row in rows:
            out.write(",\n" if count else "\n")
            json.dump(row, out, cls=DjangoJSONEncoder, ensure_ascii=False)
            count += 1
        out.write("\n]\n")
    return count


def _export_write(export) -> tuple[str, int]:
    """Write the export's zip to a temporary file, then to storage; returns its stored name and size."""
    import json
    import shutil
    import tempfile
    import zipfile

    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.core.serializers.json import DjangoJSONEncoder

    from fablab import ownership

    organization = export.organization
    owned = ownership.owned_rows(organization)
    counts, missing = {}, []
    with tempfile.TemporaryFile() as scratch:
        with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            counts["fablab.organization"] = _write_json_rows(
                archive, "data/fablab.organization.json", [ownership.row_data(Organization, organization)])
            for model in owned.model_list():
                label = model._meta.label_lower
                counts[label] = _write_json_rows(
                    archive, f"data/{label}.json",
                    (ownership.row_data(model, row) for row in owned.queryset(model).iterator(chunk_size=500)))
            files = owned.file_names(exclude=(OrganizationExport,))
            for name in files:
                try:
                    source = default_storage.open(name, "rb")
                except (FileNotFoundError, OSError):
                    missing.append(name)
                    continue
                with source, archive.open(f"files/{name}", "w", force_zip64=True) as target:
                    shutil.copyfileobj(source, target, EXPORT_COPY_CHUNK)
            manifest = {
                "organization": {"id": organization.pk, "name": organization.name, "slug": organization.slug},
                "created_at": timezone.now(),
                "rows": counts,
                "files": len(files) - len(missing),
                "missing_files": missing,
                "note": "Rows are in data/<app>.<model>.json; files under files/ keep their stored paths. "
                        "Secrets (API keys, invitation tokens) are never exported.",
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, cls=DjangoJSONEncoder))
        size = scratch.tell()
        scratch.seek(0)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        name = default_storage.save(
            f"exports/{ownership.storage_owner(organization)}/export-{export.pk}-{stamp}-{_random_string(8)}.zip",
            File(scratch, name="export.zip"))
    return name, size


def organization_export_build(*, export_id: int):
    """Write a queued export (the background task's work). Running it twice writes it once."""
    with transaction.atomic():
        export = (OrganizationExport.objects.select_for_update().select_related("organization")
                  .filter(pk=export_id).first())
        if export is None or export.status != ExportStatus.PENDING:
            return export
        export.status = ExportStatus.RUNNING
        export.save(update_fields=["status", "updated_at"])
    try:
        name, size = _export_write(export)
    except Exception as exc:
        export.status = ExportStatus.FAILED
        export.error = str(exc)[:500]
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "error", "finished_at", "updated_at"])
        raise
    now = timezone.now()
    export.file.name = name
    export.size_bytes = size
    export.status = ExportStatus.READY
    export.finished_at = now
    export.expires_at = now + timedelta(hours=settings.ORGANIZATION_EXPORT_VALID_HOURS)
    export.save(update_fields=["file", "size_bytes", "status", "finished_at", "expires_at", "updated_at"])
    return export


def organization_export_open(*, export, by):
    """The export's zip, opened for download by an owner of its organization (audited); refused once expired."""
    from django.core.files.storage import default_storage

    _require_owner(organization=export.organization, user=by)
    if not export.is_downloadable:
        raise Conflict(_("This export is not available (it is not ready yet or it has expired); request a new "
                         "one."))
    try:
        handle = default_storage.open(export.file.name, "rb")
    except (FileNotFoundError, OSError):
        raise Conflict(_("This export's file is gone; request a new one.")) from None
    audit_record(action=AuditAction.EXPORT_DOWNLOADED, organization=export.organization, target=export, actor=by)
    return handle


def organization_exports_expire(*, now: datetime | None = None) -> int:
    """Remove the files of exports past their expiry (their rows stay, marked expired). Safe to run twice."""
    from django.core.files.storage import default_storage

    now = now or timezone.now()
    expired = 0
    for export in OrganizationExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now):
        name = export.file.name
        export.status = ExportStatus.EXPIRED
        export.file.name = ""
        export.save(update_fields=["status", "file", "updated_at"])
        if name:
            default_storage.delete(name)
        expired += 1
    return expired


def organization_delete_request(*, organization: Organization, by, password: str, confirm_name: str) -> Organization:
    """An owner asks to delete the organization: confirmed with their password and the organization's name.

    What the organization keeps outside the database ends first (billing cancels its Stripe subscription
    through `fablab.signals.organization_deletion_requested`; a refusal there deletes nothing). Then the
    organization is switched off (its API keys stop working), the audit log keeps an entry, and a background
    task removes its rows and files.
    """
    from fablab.signals import organization_deletion_requested

    _require_owner(organization=organization, user=by)
    _check_password(user=by, password=password)
    if (confirm_name or "").strip() != organization.name:
        raise InvalidInput(_("Type the organization's name exactly as shown (%(name)s) to confirm. Nothing was "
                             "deleted.") % {"name": organization.name})
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        if locked.deletion_requested_at is not None:
            raise Conflict(_("The deletion of %(org)s is already under way.") % {"org": locked})
        organization_deletion_requested.send(sender=Organization, organization=locked)
        locked.is_active = False
        locked.deletion_requested_at = timezone.now()
        locked.save(update_fields=["is_active", "deletion_requested_at", "updated_at"])
        audit_record(action=AuditAction.ORGANIZATION_DELETED, organization=locked, target=locked, actor=by,
                     extra={"organization_id": locked.pk, "name": locked.name, "slug": locked.slug,
                            "kind": locked.kind})
        transaction.on_commit(lambda: _enqueue("fablab.tasks.delete_organization", locked.pk,
                                               task_name=f"delete organization {locked.pk}"))
    return locked


def organization_purge(*, organization_id: int) -> dict | None:
    """Delete an organization whose deletion was requested: its rows (by their on_delete rules) and its files.

    Rows that name it through a PROTECT key are deleted when nothing else holds on to them; those another
    organization's or the lab's rows still need (a design a lab print job was made from) stay with the key
    emptied when it may be, together with their files. Audit entries stay, without the link. The files of
    every deleted row go once the deletion is committed. Running it twice deletes once.
    """
    from django.core.files.storage import default_storage

    from fablab import ownership

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return None
    if organization.deletion_requested_at is None:
        raise Conflict(_("%(org)s was not asked to be deleted.") % {"org": organization})
    owned = ownership.owned_rows(organization)
    names_before = set(owned.file_names())
    with transaction.atomic():
        pending = [(model, fk, pk) for model, fk, pks in ownership.owned_roots(organization)
                   if fk is None or fk.remote_field.on_delete not in (CASCADE, SET_NULL)
                   for pk in sorted(pks)]
        while pending:
            left = []
            for model, fk, pk in pending:
                try:
                    with transaction.atomic():
                        model._base_manager.filter(pk=pk).delete()
                except (ProtectedError, RestrictedError):
                    left.append((model, fk, pk))
            if len(left) == len(pending):
                break
            pending = left
        kept = 0
        for model, fk, pk in pending:
            if fk is not None and fk.null:
                model._base_manager.filter(pk=pk).update(**{fk.attname: None})
                kept += 1
        Organization.objects.filter(pk=organization.pk).delete()
        names_kept = set(owned.file_names())  # rows that stayed keep their files
        doomed = sorted(names_before - names_kept)

        def remove_files():
            for name in doomed:
                try:
                    default_storage.delete(name)
                except OSError:  # already gone
                    pass

        transaction.on_commit(remove_files)
    return {"files": len(doomed), "rows_kept": kept}


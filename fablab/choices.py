from django.db import models
from django.utils.translation import gettext_lazy as _


class OrganizationKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    PARTNER = "partner", _("Partner")
    # The fab lab itself: API keys for its own systems (scales, printer hosts, scripts).
    LAB = "lab", _("The lab's own systems")


class MembershipRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")


# Roles that may manage an organization's members, invitations and API keys.
MANAGING_ROLES = frozenset({MembershipRole.OWNER, MembershipRole.ADMIN})


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Read and write")
    # A Klipper/OctoPrint host of the lab: reads spools and reports their use through the Spoolman API, nothing else.
    PRINTER_HOST = "printer_host", _("Printer host (Spoolman: read spools, report use)")


class ApiKeyStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


# The colour each badge is shown in (unfold label variants).
API_KEY_STATUS_COLORS = {
    ApiKeyStatus.ACTIVE: "success",
    ApiKeyStatus.EXPIRED: "warning",
    ApiKeyStatus.REVOKED: "danger",
}

ORGANIZATION_KIND_COLORS = {
    OrganizationKind.CUSTOMER: "info",
    OrganizationKind.PARTNER: "primary",
    OrganizationKind.LAB: "success",
}


class AuditAction(models.TextChoices):
    """What an audit log entry records: the security-relevant actions across the admin, portal and API."""

    LOGIN = "login", _("Log-in")
    LOGIN_FAILED = "login_failed", _("Failed log-in")
    API_KEY_CREATED = "api_key_created", _("API key created")
    API_KEY_REVOKED = "api_key_revoked", _("API key revoked")
    MEMBER_ADDED = "member_added", _("Member added")
    MEMBER_REMOVED = "member_removed", _("Member removed")
    MEMBER_ROLE_CHANGED = "member_role_changed", _("Member's role changed")
    PRINTER_COMMAND = "printer_command", _("Printer command")
    PLAN_CHANGED = "plan_changed", _("Plan changed")
    OWNERSHIP_TRANSFERRED = "ownership_transferred", _("Ownership transferred")
    EXPORT_REQUESTED = "export_requested", _("Data export requested")
    EXPORT_DOWNLOADED = "export_downloaded", _("Data export downloaded")
    ACCOUNT_DELETED = "account_deleted", _("Account deleted")
    ORGANIZATION_DELETED = "organization_deleted", _("Organization deleted")


class ExportStatus(models.TextChoices):
    """An organization's data export: queued, being written, ready to download until it expires, or failed."""

    PENDING = "pending", _("Queued")
    RUNNING = "running", _("Being prepared")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")

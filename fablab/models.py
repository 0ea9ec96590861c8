"""Shared infrastructure models: users, organizations (tenants), memberships, API keys, the audit log."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fablab.choices import ApiKeyScope, ApiKeyStatus, AuditAction, ExportStatus, MembershipRole, OrganizationKind


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class User(AbstractUser):
    """A person: staff (is_staff) working in the admin, or a customer/partner in the portal."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")


class OrganizationQuerySet(models.QuerySet):
    def for_user(self, user) -> "OrganizationQuerySet":
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Organization(TimeStampedModel):
    """A customer or partner company. Everything it owns carries a foreign key to it."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(
        _("slug"),
        max_length=80,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", _("Lower-case letters, digits and dashes."))],
    )
    kind = models.CharField(_("kind"), max_length=16, choices=OrganizationKind.choices, db_index=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive organizations cannot log in to the API.")
    )
    deletion_requested_at = models.DateTimeField(
        _("deletion requested"), null=True, blank=True, editable=False,
        help_text=_("An owner asked to delete the organization; its rows and files are being removed."),
    )

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name

    @property
    def email(self) -> str:
        """The billing contact (its first owner's e-mail): the address Stripe sends receipts to."""
        owner = (self.memberships.filter(role=MembershipRole.OWNER).select_related("user")
                 .order_by("created_at").first())
        return owner.user.email if owner else ""


class OrganizationOwnedQuerySet(models.QuerySet):
    def for_organization(self, organization: Organization) -> "OrganizationOwnedQuerySet":
        """The one filter through which the portal and the API see tenant data."""
        return self.filter(organization=organization)


class OrganizationOwnedModel(TimeStampedModel):
    """Base for every row that belongs to one organization."""

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="+"
    )

    objects = OrganizationOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


class Membership(TimeStampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER)

    objects = OrganizationOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "user__email"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_organization"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"


class Invitation(OrganizationOwnedModel):
    """An e-mailed invitation to join an organization. Only a hash of its token is kept."""

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("invited by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("accepted by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.UniqueConstraint(
                Lower("email"), "organization",
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_unique_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class ApiKey(OrganizationOwnedModel):
    """A partner's credential for the REST API. The secret is shown once and stored hashed.

    The full key reads `fl_<prefix>_<secret>`; `prefix` is public and identifies the
    key in lists and logs, `hashed_key` is the SHA-256 of the full key.
    """

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(_("name"), max_length=100, help_text=_("What the key is used for, e.g. 'Shop sync'."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    scope = models.CharField(_("scope"), max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, help_text=_("Empty: never expires."))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} (fl_{self.prefix}_…)"

    @property
    def status(self) -> ApiKeyStatus:
        if self.revoked_at is not None:
            return ApiKeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return ApiKeyStatus.EXPIRED
        return ApiKeyStatus.ACTIVE

    def clean(self):
        super().clean()
        if (self.scope == ApiKeyScope.PRINTER_HOST and self.organization_id is not None
                and self.organization.kind != OrganizationKind.LAB):
            raise ValidationError({"scope": _(
                "A printer host's key belongs to the lab's own systems: choose the lab's organization "
                "(kind 'lab').")})

    def allows(self, scope: str) -> bool:
        """A write key may also read; a read key may only read. A printer host's key allows neither: it reaches
        only the Spoolman API, whose doors accept it by name (fablab.api_auth.SpoolmanKeyAuth)."""
        if self.scope == ApiKeyScope.PRINTER_HOST:
            return False
        if scope == ApiKeyScope.READ:
            return True
        return self.scope == ApiKeyScope.WRITE


class OrganizationExport(OrganizationOwnedModel):
    """A zip of everything an organization owns (its rows as JSON and its files), written in the background.

    Only the organization's owners may download it, and only until `expires_at`; then its file is removed.
    """

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    status = models.CharField(_("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    file = models.FileField(_("file"), max_length=300, blank=True, editable=False)
    size_bytes = models.BigIntegerField(_("size (bytes)"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, editable=False)
    error = models.CharField(_("error"), max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")

    def __str__(self) -> str:
        return f"{self.organization} · {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else str(self.organization)

    @property
    def is_downloadable(self) -> bool:
        return (self.status == ExportStatus.READY and bool(self.file.name) and self.expires_at is not None
                and self.expires_at > timezone.now())


class AuditLogImmutable(Exception):
    """Raised on any attempt to change or delete an audit log entry."""


class AuditEntryQuerySet(models.QuerySet):
    """Entries are only ever added: bulk updates and deletes are refused like a single row's."""

    def for_organization(self, organization: Organization) -> "AuditEntryQuerySet":
        return self.filter(organization=organization)

    def update(self, **kwargs):
        raise AuditLogImmutable(_("Audit log entries cannot be changed."))

    def delete(self):
        raise AuditLogImmutable(_("Audit log entries cannot be deleted."))


class AuditEntry(models.Model):
    """One security-relevant action: who (a person or an API key), which organization, what, when, from where.

    Append-only: written once by `fablab.services.audit_record`, never changed or deleted. The actor's
    name is kept as text as well, so an entry still says who acted after the user or key is gone.
    """

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True, editable=False)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    api_key = models.ForeignKey(
        ApiKey, verbose_name=_("API key"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("who"), max_length=200, blank=True)
    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="audit_entries",
    )
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_text = models.CharField(_("target"), max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    extra = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.actor_label or '-'} · {self.target_text}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable(_("Audit log entries cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable(_("Audit log entries cannot be deleted."))

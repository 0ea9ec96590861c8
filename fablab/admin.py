from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin
from allauth.account.models import EmailAddress
from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from fablab import services
from fablab.admin_base import ReadOnlyModelAdmin, ReadOnlyTabInline
from fablab.choices import API_KEY_STATUS_COLORS, ORGANIZATION_KIND_COLORS
from fablab.models import ApiKey, AuditEntry, Invitation, Membership, Organization, User

admin.site.site_title = admin.site.site_header = "fablab"
admin.site.index_title = _("Dashboard")

# --- Organizations ---------------------------------------------------------------------


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    tab = True


class ApiKeyInline(ReadOnlyTabInline):
    """Keys are created on their own page, where the secret is shown once."""

    model = ApiKey
    fields = ["name", "prefix", "scope", "expires_at", "revoked_at", "last_used_at"]
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(ModelAdmin):
    list_display = ["name", "show_kind", "slug", "member_count", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ApiKeyInline]

    @display(description=_("kind"), ordering="kind", label=ORGANIZATION_KIND_COLORS)
    def show_kind(self, obj):
        return obj.kind, obj.get_kind_display()

    @display(description=_("members"))
    def member_count(self, obj):
        return obj.memberships.count()


@admin.register(Membership)
class MembershipAdmin(ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization__kind"]
    search_fields = ["user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(ModelAdmin):
    list_display = ["email", "organization", "role", "invited_by", "expires_at", "accepted_at"]
    list_filter = ["role", "accepted_at"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["organization", "email", "role", "invited_by", "expires_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request):
        return False  # invitations are sent from the portal, which e-mails the link


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    list_display = ["name", "organization", "show_prefix", "scope", "show_status", "expires_at", "last_used_at"]
    list_filter = ["scope", "organization"]
    search_fields = ["name", "prefix", "organization__name"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["prefix", "revoked_at", "last_used_at", "created_by", "created_at"]
    actions = ["revoke_keys"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["organization", "name", "scope", "expires_at"]
        return ["organization", "name", "prefix", "scope", "expires_at", "revoked_at", "last_used_at",
                "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*self.readonly_fields, "organization"]

    @display(description=_("key"))
    def show_prefix(self, obj):
        return f"fl_{obj.prefix}_…"

    @display(description=_("status"), label=API_KEY_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status.value, obj.status.label

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, raw_key = services.api_key_create(
            organization=obj.organization, name=obj.name, scope=obj.scope,
            expires_at=obj.expires_at, created_by=request.user,
        )
        obj.pk, obj.prefix, obj.hashed_key = api_key.pk, api_key.prefix, api_key.hashed_key
        messages.warning(
            request,
            _("Copy this key now, it is shown only once: %(key)s") % {"key": raw_key},
        )

    @action(description=_("Revoke selected keys"))
    def revoke_keys(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        count = queryset.count()
        messages.success(request, ngettext("%(n)d key revoked.", "%(n)d keys revoked.", count) % {"n": count})


# --- Audit log ------------------------------------------------------------------------
# Append-only: written by fablab.services.audit_record, never added, changed or deleted here.


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "action", "actor_label", "organization", "target_text", "ip_address"]
    list_filter = ["action", "organization", "created_at"]
    search_fields = ["actor_label", "target_text", "ip_address", "organization__name"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    fields = ["created_at", "action", "actor", "api_key", "actor_label", "organization", "target_type",
              "target_id", "target_text", "ip_address", "user_agent", "extra"]
    readonly_fields = fields
    actions = None


# --- Users and groups ------------------------------------------------------------------


class UserMembershipInline(TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["organization"]
    fields = ["organization", "role", "created_at"]
    readonly_fields = ["created_at"]
    tab = True


@admin.register(User)
class UserAdmin(DjangoUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = [UserMembershipInline]
    list_display = ["email", "username", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "username", "first_name", "last_name"]


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin, ModelAdmin):
    pass


# --- System: allauth and django-q2, restyled -----------------------------------------

admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(AllauthEmailAddressAdmin, ModelAdmin):
    pass


for _model in (Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(Schedule)
class ScheduleAdmin(q_admin.ScheduleAdmin, ModelAdmin):
    pass


@admin.register(Success)
class SuccessAdmin(q_admin.TaskAdmin, ModelAdmin):
    pass


@admin.register(Failure)
class FailureAdmin(q_admin.FailAdmin, ModelAdmin):
    pass


class QueueAdmin(q_admin.QueueAdmin, ModelAdmin):
    pass


if "orm" in settings.Q_CLUSTER:  # the queue table is only used by the ORM broker
    admin.site.register(OrmQ, QueueAdmin)


# --- Log-in lockout (django-axes) ---------------------------------------------------------
# Deleting an access attempt unlocks that account at that address.


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin, ModelAdmin):
    pass


@admin.register(AccessLog)
class AccessLogAdmin(axes_admin.AccessLogAdmin, ModelAdmin):
    pass


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin, ModelAdmin):
    pass

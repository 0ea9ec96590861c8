from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from billing import services
from billing.choices import OVERAGE_REPORT_STATUS_COLORS, PLAN_SOURCE_COLORS, OverageReportStatus, PlanSource
from billing.models import OrganizationPlan, OverageReport, Plan, PlanLimit, UsageCounter, UsageLedger
from fablab.admin_base import ReadOnlyModelAdmin
from fablab.exceptions import ApplicationError


class PlanLimitInline(TabularInline):
    model = PlanLimit
    extra = 0
    fields = ["feature", "per_month", "per_day", "overage_unit_price"]


@admin.register(Plan)
class PlanAdmin(ModelAdmin):
    list_display = ["name", "key", "price_per_month", "currency", "stripe_lookup_key", "is_public", "sort_order"]
    list_editable = ["sort_order"]
    search_fields = ["name", "key"]
    inlines = [PlanLimitInline]

    def has_delete_permission(self, request, obj=None):
        return False  # organizations hold plans; a plan leaves the portal with "offered in the portal" off


class CompForm(forms.ModelForm):
    class Meta:
        model = OrganizationPlan
        fields = ["organization", "plan", "note"]


@admin.register(OrganizationPlan)
class OrganizationPlanAdmin(ModelAdmin):
    """Who has which plan. Adding or changing one here gives a complimentary plan (as billing_grant does)."""

    form = CompForm
    list_display = ["organization", "plan", "show_source", "period_start", "period_end", "grace_until", "note"]
    list_filter = ["plan", "source"]
    search_fields = ["organization__name", "organization__slug", "stripe_subscription_id"]
    actions = ["end_comp"]

    @display(description=_("source"), label=PLAN_SOURCE_COLORS)
    def show_source(self, obj):
        return obj.source, obj.get_source_display()

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.source == PlanSource.STRIPE:
            return ["organization", "plan", "note"]  # Stripe's webhooks own a paid plan
        return ["organization"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        try:
            saved = services.plan_grant(organization=obj.organization, plan=obj.plan, by=request.user,
                                        note=obj.note)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # end a comp with the action; a paid plan ends through Stripe

    @action(description=_("End complimentary plans (back to Free)"))
    def end_comp(self, request, queryset):
        for row in queryset.select_related("organization"):
            if row.source != PlanSource.COMP:
                messages.error(request, _("%(org)s pays through Stripe; its plan ends there.") % {
                    "org": row.organization})
                continue
            services.plan_revoke_comp(organization=row.organization)
            messages.success(request, _("%(org)s is on Free again.") % {"org": row.organization})


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyModelAdmin):
    list_display = ["organization", "feature", "period_kind", "period_start", "period_end", "used", "limit"]
    list_filter = ["feature", "period_kind"]
    search_fields = ["organization__name"]
    date_hierarchy = "period_start"


@admin.register(UsageLedger)
class UsageLedgerAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "organization", "feature", "key", "direction", "delta", "overage", "plan_key"]
    list_filter = ["feature", "direction", "overage", "plan_key"]
    search_fields = ["organization__name", "key"]
    date_hierarchy = "created_at"


@admin.register(OverageReport)
class OverageReportAdmin(ReadOnlyModelAdmin):
    """The overage outbox: each overage unit on its way to Stripe's meter. Failed rows need staff."""

    list_display = ["occurred_at", "organization", "identifier", "show_status", "attempts", "next_attempt_at",
                    "sent_at", "last_error"]
    list_filter = ["status", "event_name"]
    search_fields = ["organization__name", "identifier", "stripe_customer_id"]
    date_hierarchy = "occurred_at"
    actions = ["retry"]

    @display(description=_("status"), label=OVERAGE_REPORT_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status, obj.get_status_display()

    def has_retry_permission(self, request):
        return request.user.has_perm("billing.change_overagereport")

    @action(description=_("Retry failed reports"), permissions=["retry"])
    def retry(self, request, queryset):
        retried = 0
        for row in queryset.filter(status=OverageReportStatus.FAILED):
            services.overage_report_retry(report=row)
            retried += 1
        messages.success(request, _("%(n)s failed report(s) will be sent again at the next run.") % {"n": retried})


# dj-stripe registers its own admin pages (webhook endpoints, customers, events, …) with Django's plain
# ModelAdmin; the same pages, kept as dj-stripe made them, get the admin's unfold look.
def _restyle_djstripe_admin() -> None:
    import djstripe.admin  # noqa: F401  (registers dj-stripe's pages first)

    for model, model_admin in list(admin.site._registry.items()):
        if model._meta.app_label != "djstripe" or isinstance(model_admin, ModelAdmin):
            continue
        styled = type(type(model_admin).__name__, (ModelAdmin, type(model_admin)), {})
        admin.site.unregister(model)
        admin.site.register(model, styled)


_restyle_djstripe_admin()

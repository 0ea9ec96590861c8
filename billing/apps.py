from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _plans_after_migrate(sender, apps=None, **kwargs):
    from django.apps import apps as global_apps

    from billing.defaults import plans_ensure

    models = apps or global_apps  # the migrated state when `migrate` sends it
    try:
        plan, limit = models.get_model("billing", "Plan"), models.get_model("billing", "PlanLimit")
    except LookupError:  # migrated back to before the plans existed
        return
    plans_ensure(plan, limit)


def _close_billing(sender, organization, **kwargs):
    """An organization is about to be deleted: its subscription ends first (a refusal stops the deletion)."""
    from billing.services import organization_billing_close

    organization_billing_close(organization=organization)


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from billing import webhooks  # noqa: F401  (connects the receivers of Stripe's events)
        from fablab.signals import organization_deletion_requested

        organization_deletion_requested.connect(_close_billing, dispatch_uid="billing.organization_deletion")

        post_migrate.connect(_plans_after_migrate, sender=self, dispatch_uid="billing.default_plans")

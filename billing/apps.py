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


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from billing import webhooks  # noqa: F401  (connects the receivers of Stripe's events)

        post_migrate.connect(_plans_after_migrate, sender=self, dispatch_uid="billing.default_plans")

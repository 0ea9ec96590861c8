from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from billing import webhooks  # noqa: F401  (connects the receivers of Stripe's events)

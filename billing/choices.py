from django.db import models
from django.utils.translation import gettext_lazy as _

# Metered features are plain slugs: a new one is a PlanLimit row per plan, not a new field or choice.
SCANS = "scans"
FREE_PLAN = "free"


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Billing period")
    DAY = "day", _("Day")


class PlanSource(models.TextChoices):
    STRIPE = "stripe", _("Stripe subscription")
    COMP = "comp", _("Complimentary (staff)")
    DEFAULT = "default", _("Free plan (no subscription)")


class LedgerDirection(models.TextChoices):
    CONSUME = "consume", _("Used")
    REFUND = "refund", _("Given back")


PLAN_SOURCE_COLORS = {
    PlanSource.STRIPE: "success",
    PlanSource.COMP: "info",
    PlanSource.DEFAULT: "info",
}

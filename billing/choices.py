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


class OverageReportStatus(models.TextChoices):
    """An overage unit on its way to Stripe's billing meter (the outbox)."""

    PENDING = "pending", _("Waiting to be reported")
    SENT = "sent", _("Reported")
    FAILED = "failed", _("Failed (needs staff)")
    CANCELLED = "cancelled", _("Given back before it was reported")
    WITHDRAWING = "withdrawing", _("Given back; cancelling the reported event")
    WITHDRAWN = "withdrawn", _("Given back; reported event cancelled")


OVERAGE_REPORT_STATUS_COLORS = {
    OverageReportStatus.PENDING: "info",
    OverageReportStatus.SENT: "success",
    OverageReportStatus.FAILED: "danger",
    OverageReportStatus.CANCELLED: "info",
    OverageReportStatus.WITHDRAWING: "warning",
    OverageReportStatus.WITHDRAWN: "info",
}
# What the outbox task still has to do.
OVERAGE_REPORT_DUE = (OverageReportStatus.PENDING, OverageReportStatus.WITHDRAWING)

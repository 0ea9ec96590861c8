"""Plans, what an organization is entitled to, and the usage it has consumed.

Limits are rows (`PlanLimit`: one per plan and metered feature), so a new metered
feature is data, not a migration. Usage is counted twice on purpose: `UsageCounter`
holds the running total each quota check updates atomically, and `UsageLedger` is the
append-only record every counter change comes from (one row per unit used or given
back, with a unique key, so replaying the same request changes nothing).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.choices import LedgerDirection, OverageReportStatus, PeriodKind, PlanSource
from fablab.models import TimeStampedModel

slug_validator = RegexValidator(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$", _("Lower-case letters, digits, - and _."))


class Plan(TimeStampedModel):
    key = models.SlugField(_("key"), max_length=40, unique=True, validators=[slug_validator])
    name = models.CharField(_("name"), max_length=100)
    price_per_month = models.DecimalField(
        _("price per month"), max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(_("currency"), max_length=3, default="GBP",
                                validators=[RegexValidator(r"^[A-Z]{3}$", _("An ISO 4217 code, e.g. GBP."))])
    stripe_lookup_key = models.CharField(
        _("Stripe price lookup key"), max_length=100, blank=True,
        help_text=_("The lookup key of the monthly base price in Stripe (billing_sync_plans sets it up)."),
    )
    stripe_overage_lookup_key = models.CharField(
        _("Stripe overage price lookup key"), max_length=100, blank=True,
        help_text=_("The lookup key of the metered overage price; empty for a plan without overage."),
    )
    is_public = models.BooleanField(_("offered in the portal"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["sort_order", "price_per_month"]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self) -> str:
        return self.name

    @property
    def is_free(self) -> bool:
        return self.price_per_month == 0


class PlanLimit(models.Model):
    """The allowance of one metered feature in one plan. Empty limits are unlimited."""

    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="limits")
    feature = models.CharField(_("feature"), max_length=40, validators=[slug_validator],
                               help_text=_("What is metered, e.g. 'scans'."))
    per_month = models.PositiveIntegerField(_("per billing period"), null=True, blank=True,
                                            help_text=_("Empty: unlimited."))
    per_day = models.PositiveIntegerField(_("per day"), null=True, blank=True, help_text=_("Empty: unlimited."))
    overage_unit_price = models.DecimalField(
        _("overage price per unit"), max_digits=10, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Empty: a hard stop at the period's allowance. Set: units above it are billed at this price."),
    )

    class Meta:
        ordering = ["plan", "feature"]
        verbose_name = _("plan limit")
        verbose_name_plural = _("plan limits")
        constraints = [models.UniqueConstraint(fields=["plan", "feature"], name="billing_planlimit_unique_feature")]

    def __str__(self) -> str:
        return f"{self.plan} · {self.feature}"

    @property
    def allows_overage(self) -> bool:
        return self.overage_unit_price is not None


class OrganizationPlan(TimeStampedModel):
    """The plan an organization is entitled to now, and where that comes from.

    Written only by billing services: from Stripe's webhooks (source stripe) or by staff (source comp).
    Without a row, an organization has the free plan.
    """

    organization = models.OneToOneField("fablab.Organization", verbose_name=_("organization"),
                                        on_delete=models.CASCADE, related_name="billing_plan")
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="+")
    source = models.CharField(_("source"), max_length=8, choices=PlanSource.choices)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True,
                                        help_text=_("Empty: the calendar month in the organization's time zone."))
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    grace_until = models.DateTimeField(
        _("grace until"), null=True, blank=True,
        help_text=_("A payment failed: the plan's limits stay until then, then the organization falls back to Free."),
    )
    grace_ended_at = models.DateTimeField(
        _("fell back to Free"), null=True, blank=True, editable=False,
        help_text=_("When the grace period ran out and the owners were told (a later payment restores the plan)."),
    )
    stripe_subscription_id = models.CharField(_("Stripe subscription"), max_length=255, blank=True)
    # When the Stripe events last applied were created: an older event arriving later changes nothing.
    stripe_event_at = models.DateTimeField(_("last subscription event"), null=True, blank=True, editable=False)
    payment_event_at = models.DateTimeField(_("last payment event"), null=True, blank=True, editable=False)
    note = models.CharField(_("note"), max_length=255, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("granted by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["organization"]
        verbose_name = _("organization plan")
        verbose_name_plural = _("organization plans")

    def __str__(self) -> str:
        return f"{self.organization}: {self.plan}"

    def clean(self) -> None:
        super().clean()
        if self.period_start and self.period_end and self.period_end <= self.period_start:
            raise ValidationError({"period_end": _("The period must end after it starts.")})


class UsageCounter(models.Model):
    """How much of one feature an organization used in one period (a day or a billing period).

    `used` counts every unit, overage included; it only changes together with a ledger row.
    `limit` is the allowance the last change was checked against (empty: unlimited).
    """

    organization = models.ForeignKey("fablab.Organization", verbose_name=_("organization"),
                                     on_delete=models.CASCADE, related_name="+")
    feature = models.CharField(_("feature"), max_length=40)
    period_kind = models.CharField(_("period"), max_length=8, choices=PeriodKind.choices)
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    used = models.PositiveIntegerField(_("used"), default=0)
    limit = models.PositiveIntegerField(_("limit"), null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "organization", "feature"]
        verbose_name = _("usage counter")
        verbose_name_plural = _("usage counters")
        constraints = [
            models.UniqueConstraint(fields=["organization", "feature", "period_kind", "period_start"],
                                    name="billing_usagecounter_unique_period"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.feature} · {self.period_kind} {self.period_start:%Y-%m-%d}"


class UsageLedger(models.Model):
    """One unit used or given back. Append-only: a refund is a new row, never an edit.

    `key` names the thing that used the unit (e.g. one submission of one scan); together with the
    feature and the direction it is unique, so a retried request counts once and is refunded once.
    """

    organization = models.ForeignKey("fablab.Organization", verbose_name=_("organization"),
                                     on_delete=models.CASCADE, related_name="+")
    feature = models.CharField(_("feature"), max_length=40)
    key = models.CharField(_("usage key"), max_length=200)
    direction = models.CharField(_("direction"), max_length=8, choices=LedgerDirection.choices)
    delta = models.SmallIntegerField(_("units"))
    overage = models.BooleanField(_("overage"), default=False,
                                  help_text=_("Above the period's allowance: billed per unit."))
    plan_key = models.CharField(_("plan"), max_length=40)
    month_start = models.DateTimeField(_("billing period start"))
    day_start = models.DateTimeField(_("day start"))
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("usage ledger entry")
        verbose_name_plural = _("usage ledger")
        constraints = [
            models.UniqueConstraint(fields=["key", "feature", "direction"], name="billing_usageledger_unique_key"),
            models.CheckConstraint(
                condition=(models.Q(direction=LedgerDirection.CONSUME, delta=1)
                           | models.Q(direction=LedgerDirection.REFUND, delta=-1)),
                name="billing_usageledger_delta_matches_direction",
            ),
        ]
        indexes = [models.Index(fields=["organization", "feature", "month_start"])]

    def __str__(self) -> str:
        return f"{self.key} {self.direction} {self.delta:+d}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("Usage ledger entries cannot be changed; record a refund instead."))
        super().save(*args, **kwargs)


class OverageReport(TimeStampedModel):
    """The outbox of overage billing: one row per overage unit, written in the transaction that used it.

    A django-q2 task reports each pending row to Stripe's billing meter once (`identifier` is the usage
    key, so Stripe refuses a second event for the same unit too), retrying with exponential backoff; a
    refusal, or a transient failure past the last attempt, leaves the row failed for staff. A unit given
    back before it was reported is cancelled; one given back after is withdrawn with a cancel adjustment.
    """

    organization = models.ForeignKey("fablab.Organization", verbose_name=_("organization"),
                                     on_delete=models.CASCADE, related_name="+")
    ledger = models.OneToOneField(UsageLedger, verbose_name=_("usage"), on_delete=models.PROTECT,
                                  related_name="overage_report")
    feature = models.CharField(_("feature"), max_length=40)
    event_name = models.CharField(_("meter event name"), max_length=100)
    identifier = models.CharField(_("identifier"), max_length=100, unique=True,
                                  help_text=_("The usage key; Stripe accepts one event per identifier."))
    value = models.PositiveSmallIntegerField(_("units"), default=1)
    occurred_at = models.DateTimeField(_("used at"))
    status = models.CharField(_("status"), max_length=12, choices=OverageReportStatus.choices,
                              default=OverageReportStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    stripe_customer_id = models.CharField(_("Stripe customer"), max_length=255, blank=True)
    sent_at = models.DateTimeField(_("reported at"), null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name = _("overage report")
        verbose_name_plural = _("overage outbox")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.identifier} ({self.get_status_display()})"

"""django-q2 entry points of billing. Each is safe to run twice."""

from billing import services


def report_overage() -> dict[str, int]:
    """Send the overage outbox to Stripe's billing meter (fablab/schedules.py: every minute)."""
    return services.overage_reports_send()


def reconcile_overage() -> list[dict]:
    """Compare the outbox with Stripe's meter summaries; the differences are the task's result (daily)."""
    return services.overage_reconcile()


def expire_graces() -> int:
    """Grace periods after a failed payment that ran out: owners told the organization is on Free."""
    return services.graces_expire()

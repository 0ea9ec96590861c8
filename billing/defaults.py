"""The four plans the scanning service starts with (staff may edit them afterwards).

The data migration creates them, and a post_migrate receiver creates any that is missing (a database
flushed by a test, or restored without them), never changing a plan staff edited.
"""

from decimal import Decimal

OVERAGE = Decimal("0.60")
PLANS = [
    # key, name, price per month (GBP), scans per month, scans per day (None: unlimited), overage per scan
    ("free", "Free", Decimal("0"), 2, 1, None),
    ("starter", "Starter", Decimal("29"), 50, 5, OVERAGE),
    ("professional", "Professional", Decimal("99"), 200, 25, OVERAGE),
    ("business", "Business", Decimal("399"), 1000, None, OVERAGE),
]


def plans_ensure(plan_model, limit_model) -> int:
    """Create the default plans (and their scan limits) that do not exist; returns how many were created."""
    created = 0
    for order, (key, name, price, per_month, per_day, overage) in enumerate(PLANS):
        plan, made = plan_model.objects.get_or_create(key=key, defaults={
            "name": name, "price_per_month": price, "currency": "GBP", "sort_order": order,
            "stripe_lookup_key": "" if price == 0 else f"fablab_{key}_monthly",
            "stripe_overage_lookup_key": f"fablab_{key}_scan_overage" if overage is not None else "",
        })
        if made:
            created += 1
            limit_model.objects.get_or_create(plan=plan, feature="scans", defaults={
                "per_month": per_month, "per_day": per_day, "overage_unit_price": overage})
    return created

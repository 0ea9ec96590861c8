"""The four plans of the scanning service (staff may edit them afterwards)."""

from decimal import Decimal

from django.db import migrations

OVERAGE = Decimal("0.60")
PLANS = [
    # key, name, price per month (GBP), scans per month, scans per day (None: unlimited), overage per scan
    ("free", "Free", Decimal("0"), 2, 1, None),
    ("starter", "Starter", Decimal("29"), 50, 5, OVERAGE),
    ("professional", "Professional", Decimal("99"), 200, 25, OVERAGE),
    ("business", "Business", Decimal("399"), 1000, None, OVERAGE),
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    PlanLimit = apps.get_model("billing", "PlanLimit")
    for order, (key, name, price, per_month, per_day, overage) in enumerate(PLANS):
        plan, _created = Plan.objects.get_or_create(key=key, defaults={
            "name": name, "price_per_month": price, "currency": "GBP", "sort_order": order,
            "stripe_lookup_key": "" if price == 0 else f"fablab_{key}_monthly",
            "stripe_overage_lookup_key": f"fablab_{key}_scan_overage" if overage is not None else "",
        })
        PlanLimit.objects.get_or_create(plan=plan, feature="scans", defaults={
            "per_month": per_month, "per_day": per_day, "overage_unit_price": overage})


def remove_plans(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(key__in=[row[0] for row in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_plans_entitlements_usage")]

    operations = [migrations.RunPython(create_plans, remove_plans)]

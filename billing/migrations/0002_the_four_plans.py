"""The four plans of the scanning service (staff may edit them afterwards)."""

from django.db import migrations

from billing.defaults import PLANS, plans_ensure


def create_plans(apps, schema_editor):
    plans_ensure(apps.get_model("billing", "Plan"), apps.get_model("billing", "PlanLimit"))


def remove_plans(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(key__in=[row[0] for row in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_plans_entitlements_usage")]

    operations = [migrations.RunPython(create_plans, remove_plans)]

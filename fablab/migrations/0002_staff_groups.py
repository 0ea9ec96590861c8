"""Create the staff groups "Manager" and "Operator" with their permissions (fablab/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_staff_groups(apps, schema_editor):
    from fablab.roles import sync_staff_groups

    # Permissions normally appear only after all migrations ran; make them now so the
    # groups get them on a fresh database too.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_staff_groups(apps)


def remove_staff_groups(apps, schema_editor):
    from fablab.roles import STAFF_GROUPS

    apps.get_model("auth", "Group").objects.filter(name__in=STAFF_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("fablab", "0001_initial"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("django_q", "__latest__"),
        ("account", "__latest__"),
    ]

    operations = [migrations.RunPython(create_staff_groups, remove_staff_groups)]

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_groups_after_migrate(sender, app_config=None, apps=None, using="default", **kwargs):
    # post_migrate is sent once per installed app; permissions of every app exist
    # only once the last one has been handled.
    from django.apps import apps as global_apps

    if sender.label != list(global_apps.get_app_configs())[-1].label:
        return
    from fablab.roles import sync_staff_groups

    sync_staff_groups(global_apps)


class FablabConfig(AppConfig):
    name = "fablab"
    verbose_name = _("Customers & partners")

    def ready(self):
        post_migrate.connect(_sync_groups_after_migrate, dispatch_uid="fablab.sync_staff_groups")

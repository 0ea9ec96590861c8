from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_groups_after_migrate(sender, app_config=None, apps=None, using="default", **kwargs):
    # post_migrate is sent once per installed app that has models; permissions of
    # every app exist only once the last of those has been handled.
    from django.apps import apps as global_apps

    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if sender.label != with_models[-1].label:
        return
    from fablab.roles import sync_staff_groups

    sync_staff_groups(global_apps)


class FablabConfig(AppConfig):
    name = "fablab"
    verbose_name = _("Customers & partners")

    def ready(self):
        post_migrate.connect(_sync_groups_after_migrate, dispatch_uid="fablab.sync_staff_groups")
        from fablab import audit  # connects the audit log's log-in receivers

        audit._membership_receivers()

        from fablab.logs import redact_server_logs

        redact_server_logs()  # API keys in URL paths never reach the access logs (settings.LOGGING: the rest)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProductionConfig(AppConfig):
    name = "production"
    verbose_name = _("Production")

    def ready(self) -> None:
        from catalog.panels import register_version_panel
        from production import receivers  # noqa: F401 - connects the receivers of the printers' signals
        from production.panels import print_success_for_sliced_file

        register_version_panel(_("Print success"), print_success_for_sliced_file)

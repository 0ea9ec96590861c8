from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("Inventory")

    def ready(self):
        from catalog.panels import register_version_panel
        from inventory.panels import stock_for_sliced_file

        register_version_panel(_("Stock for this file"), stock_for_sliced_file)

        from inventory import spoolman_events

        spoolman_events.connect()

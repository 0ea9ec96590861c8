from decimal import Decimal

import pytest

from printers.tests.file_fixtures import bambu, ftps_sim, printer_file_settings, prusa, prusa_sim  # noqa: F401


@pytest.fixture
def cost_settings(settings):
    """The cost settings of the hand-computed case in test_costs (whatever the environment says)."""
    settings.PRODUCTION_CURRENCY = "EUR"
    settings.PRODUCTION_ENERGY_PRICE_PER_KWH = Decimal("0.30")
    settings.PRODUCTION_PRINTER_POWER_W = Decimal("150")
    settings.PRODUCTION_PRINTER_PRICE = Decimal("1000")
    settings.PRODUCTION_PRINTER_LIFETIME_HOURS = Decimal("5000")
    settings.PRODUCTION_PRINTER_MAINTENANCE_PER_HOUR = Decimal("0.05")
    settings.PRODUCTION_LABOUR_PER_HOUR = Decimal("25")
    settings.PRODUCTION_HANDLING_MINUTES = Decimal("5")
    settings.PRODUCTION_VAT_PERCENT = Decimal("19")
    settings.PRODUCTION_UNIT_COST_RECENT_JOBS = 10
    return settings

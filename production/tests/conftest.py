from decimal import Decimal

import pytest

from printers.drivers.base import StorageFile
from printers.tests.file_fixtures import bambu, ftps_sim, printer_file_settings, prusa, prusa_sim  # noqa: F401
from production import services


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


@pytest.fixture
def sent(monkeypatch):
    """What dispatch asks of the printers app (upload, then start with the filament mapping), recorded instead of
    sent; the loop tests use the simulators instead."""
    calls = []

    def upload(*, printer, name, source, size=None):
        calls.append(("upload", printer.name, name))
        return StorageFile(path=f"/{name}", name=name, folder="/", size_bytes=size, modified=None)

    def start(*, printer, path, plate=1, filament_mapping=None, organization=None, idempotency_key=""):
        calls.append(("start", printer.name, path, filament_mapping))

    monkeypatch.setattr(services.printer_services, "printer_file_upload", upload)
    monkeypatch.setattr(services.printer_services, "printer_start_file", start)
    return calls

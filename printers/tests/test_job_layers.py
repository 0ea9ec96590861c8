"""A printer job keeps the last layer the printer reported (production books a failed print's filament by it),
and a Bambu printer may name its own FTPS port (simulated printers on one host each need their own)."""

import pytest

from printers import services
from printers.choices import JobOutcome, PrinterState
from printers.drivers import registry
from printers.models import PrinterJob
from printers.simulators.ftps import BambuFTPSSimulator
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

pytestmark = pytest.mark.django_db


def _report(printer, state, **fields):
    services.printer_apply_state(printer=printer, state=NormalisedState(state=state, job_key="7", **fields))


def test_the_last_reported_layer_is_kept_through_the_end_of_a_failed_job():
    printer = PrinterFactory()
    _report(printer, PrinterState.IDLE)
    _report(printer, PrinterState.PRINTING, layer=1, total_layers=40, progress_percent=1.0)
    _report(printer, PrinterState.PRINTING, layer=12, total_layers=40, progress_percent=1.0)  # progress lags
    job = PrinterJob.objects.get(printer=printer)
    assert job.last_layer == 12
    _report(printer, PrinterState.PRINTING, layer=9, total_layers=40, progress_percent=30.0)  # never goes back
    _report(printer, PrinterState.FAILED, layer=13, total_layers=40, progress_percent=31.0)
    job.refresh_from_db()
    assert job.outcome == JobOutcome.FAILED and job.last_layer == 13 and job.progress_reached == 31.0


def test_a_printer_that_reports_no_layers_leaves_it_empty():
    printer = PrinterFactory()
    _report(printer, PrinterState.IDLE)
    _report(printer, PrinterState.PRINTING, progress_percent=20.0)
    _report(printer, PrinterState.CANCELLED, progress_percent=25.0)
    assert PrinterJob.objects.get(printer=printer).last_layer is None


def test_a_bambu_printer_with_its_own_files_port_is_reached_there(settings):
    settings.BAMBU_FTPS_PORT = 1  # nothing listens there: only the printer's own port works
    with BambuFTPSSimulator(serial="01P00A391800777", access_code="12345678") as simulator:
        simulator.add_file("/cache/cube.gcode.3mf", b"PK\x03\x04 cube")
        printer = BambuPrinterFactory(serial=simulator.serial, host=simulator.host, files_port=simulator.port)
        services.printer_set_credentials(printer=printer, secret="12345678")
        access = services.printer_access(printer=printer)
        assert access.files_port == simulator.port
        names = [entry.name for entry in registry.for_printer(printer).list_files(access)]
    assert "cube.gcode.3mf" in names

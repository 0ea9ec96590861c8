"""Dispatch: a queued job goes to a free printer that has its filaments loaded; claims are atomic."""

from decimal import Decimal

import pytest

from fablab.exceptions import Conflict
from printers.choices import PrinterState
from printers.drivers.base import StorageFile
from production import services
from production.choices import AttemptOutcome, PrintJobStatus, SpoolSource
from production.models import PrintAttempt, PrinterStation, SlotAllocation
from production.tests.factories import BambuPrinterFactory, FilamentFactory, bambu_file, live, spool, version

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """What dispatch asks of the printers app, recorded instead of sent (the loop tests use simulators)."""
    calls = []

    def upload(*, printer, name, source, size=None):
        calls.append(("upload", printer.name, name))
        return StorageFile(path=f"/{name}", name=name, folder="/", size_bytes=size, modified=None)

    def start(*, printer, path, plate=1, filament_mapping=None, organization=None, idempotency_key=""):
        calls.append(("start", printer.name, path, filament_mapping))

    monkeypatch.setattr(services.printer_services, "printer_file_upload", upload)
    monkeypatch.setattr(services.printer_services, "printer_start_file", start)
    return calls


def _tray(slot, material="PLA", colour="#00AE42", percent=80):
    return {"ams": 0, "tray": slot, "slot": slot, "type": material, "name": "", "colour": colour,
            "remaining_percent": percent, "loaded": False}


def _printer(name, trays, state=PrinterState.IDLE):
    printer = BambuPrinterFactory(name=name, model="P1S")
    return live(printer, state=state, online=True, filament_slots=trays, nozzle_type="hardened_steel",
                nozzle_diameter_mm=0.4)


def _queued():
    version_ = version(**bambu_file())
    version_.sliced_file.original_name = "cube.gcode.3mf"
    version_.sliced_file.save()
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"))
    return services.print_job_create(version=version_)


def test_dispatch_prefers_an_exact_colour_and_sends_the_mapping(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    close = _printer("A close", [_tray(0, colour="#02B044")])
    exact = _printer("B exact", [_tray(0, colour="#FF0000"), _tray(3, colour="#00AE42")])
    _printer("C busy", [_tray(0)], state=PrinterState.PRINTING)
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    sent_job = services.print_job_dispatch()
    assert sent_job.pk == job.pk and sent_job.status == PrintJobStatus.SENT and sent_job.printer == exact
    assert sent == [("upload", "B exact", "cube.gcode.3mf"), ("start", "B exact", "/cube.gcode.3mf", [3])]
    attempt = PrintAttempt.objects.get(job=job)
    assert attempt.printer == exact and attempt.file_name == "cube.gcode.3mf"
    assert SlotAllocation.objects.get(attempt=attempt).tray == 3
    assert PrinterStation.objects.get(printer=exact).plate_clear is False
    assert services.print_job_dispatch() is None  # nothing else queued; "A close" stays free
    assert PrinterStation.objects.filter(printer=close, plate_clear=False).exists() is False


def test_a_printer_without_the_filament_or_with_its_plate_uncleared_is_not_chosen(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    _printer("Wrong colour", [_tray(0, colour="#FF0000")])
    _printer("Too little", [_tray(0, percent=0)])
    full = _printer("Plate full", [_tray(0)])
    PrinterStation.objects.create(printer=full, plate_clear=False)
    job = _queued()
    assert services.print_job_dispatch() is None
    with pytest.raises(Conflict):
        services.print_job_dispatch(job=job)
    job.refresh_from_db()
    assert job.status == PrintJobStatus.QUEUED and not sent
    services.printer_plate_cleared(printer=full)
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    assert services.print_job_dispatch(job=job, printer=full).printer == full


def test_a_loaded_spool_feeds_its_tray_and_is_booked_as_loaded(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Loaded", [_tray(1, percent=None)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    fed = spool(FilamentFactory(material="PLA", colour_hex="#00AE42"), grams="300")
    services.spool_load(printer=printer, tray=1, spool=fed)
    services.print_job_dispatch(job=job)
    allocation = SlotAllocation.objects.get()
    assert (allocation.spool, allocation.spool_source, allocation.tray) == (fed, SpoolSource.LOADED, 1)
    assert allocation.grams_planned == Decimal("6.750")


def test_one_job_is_claimed_once_and_one_printer_takes_one_job(sent):
    printer = _printer("Solo", [_tray(0)])
    job = _queued()
    placement = services._placement(printer, job)
    first = services._claim(job, placement)
    assert first is not None and services._claim(job, placement) is None  # the job is taken
    job.refresh_from_db()
    assert job.status == PrintJobStatus.ASSIGNED and PrintAttempt.objects.count() == 1
    other = _queued()
    assert services._claim(other, services._placement(printer, other)) is None  # the printer is taken
    other.refresh_from_db()
    assert other.status == PrintJobStatus.QUEUED


def test_a_printer_that_refuses_the_file_puts_the_job_back(monkeypatch, sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Refuses", [_tray(0)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)

    def refuse(**kwargs):
        raise Conflict("busy")

    monkeypatch.setattr(services.printer_services, "printer_start_file", refuse)
    with pytest.raises(Conflict):
        services.print_job_dispatch(job=job)
    job.refresh_from_db()
    attempt = PrintAttempt.objects.get()
    assert job.status == PrintJobStatus.QUEUED and attempt.outcome == AttemptOutcome.FAILED
    assert "busy" in attempt.reason and PrinterStation.objects.get(printer=printer).plate_clear is True


def test_automatic_dispatch_only_fills_printers_that_have_it_on(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Auto", [_tray(0)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    assert services.print_jobs_dispatch_auto() == 0
    services.printer_station_set_auto(printer=printer, auto_dispatch=True)
    assert services.print_jobs_dispatch_auto() == 1


def test_the_demo_setting_lets_an_idle_printer_with_automatic_dispatch_count_as_cleared(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Demo auto", [_tray(0)])
    finished = _printer("Demo finished", [_tray(0)], state=PrinterState.FINISHED)
    manual = _printer("Demo manual", [_tray(0)])
    for each in (printer, finished, manual):
        services.printer_station_set_auto(printer=each, auto_dispatch=each != manual)
    PrinterStation.objects.update(plate_clear=False)
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)

    settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED = False  # a lab: only an operator clears a plate
    assert services.print_jobs_dispatch_auto() == 0
    assert not PrinterStation.objects.filter(plate_clear=True).exists()

    settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED = True
    assert services.print_jobs_dispatch_auto() == 1
    job.refresh_from_db()
    assert job.status == PrintJobStatus.SENT and job.printer == printer
    assert PrinterStation.objects.get(printer=printer).plate_clear is False  # taken by the job just sent
    assert PrinterStation.objects.get(printer=finished).plate_clear is False  # its print is still on the plate
    assert PrinterStation.objects.get(printer=manual).plate_clear is False  # no automatic dispatch
    services._plates_cleared_by_idle_printers()
    assert PrinterStation.objects.get(printer=printer).plate_clear is False  # busy with the job sent

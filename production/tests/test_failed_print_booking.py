"""A failed or cancelled print books what it extruded up to where it stopped: layers 1..k, or, with
PRODUCTION_BOOK_INSIDE_LAYER and a progress the printer reported, layers 1..k-1 and the part of layer k
that progress places it at (catalog.selectors.sliced_file_extruded_at)."""

from decimal import Decimal

import pytest

from inventory.choices import MovementKind
from inventory.models import Movement
from printers import services as printer_services
from printers.choices import PrinterState
from printers.state import NormalisedState
from production import services
from production.choices import PrintJobStatus
from production.models import PrintAttempt, PrintJob, SlotAllocation
from production.tests.factories import FilamentFactory, PrinterFactory, SlicedFileFactory, VersionFactory, spool

pytestmark = pytest.mark.django_db

# Four layers of 10 s each, one slot: cumulative 100, 250, 450, 700 mm at 0.0125 g/mm → 1.25, 3.125, 5.625,
# 8.75 g. The file's own progress (M73) rises by 25 % at each layer change.
TABLE = {"source": "test", "layer_count": 4, "slot_count": 1, "z": [0.2, 0.4, 0.6, 0.8], "slots": [0],
         "mm": [[100.0, 250.0, 450.0, 700.0]], "g_per_mm": [0.0125], "seconds": [10.0, 20.0, 30.0, 40.0],
         "progress": [[0, 0.0], [25, 10.0], [50, 20.0], [75, 30.0], [100, 40.0]], "start_seconds": 0.0,
         "start_mm": [0.0]}


@pytest.fixture
def report(django_capture_on_commit_callbacks):
    """Report a state as the printer listener does, with the signals sent after the commit."""
    def send(printer, state, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            printer_services.printer_apply_state(printer=printer, state=NormalisedState(state=state, **fields))
    return send


def _sent(name: str):
    """A print of `name` sent to a printer with a loaded PETG spool; returns (printer, spool, attempt)."""
    from catalog.tests.factories import metadata

    printer = PrinterFactory()
    fed = spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="1000")
    services.spool_load(printer=printer, tray=0, spool=fed)
    sliced = SlicedFileFactory(original_name=name, layers={"1": TABLE},
                               metadata=metadata(filament_used_g=[8.75], filament_type=["PETG"],
                                                 filament_colour=["#FF8000"]))
    job = services.print_job_create(version=VersionFactory(sliced_file=sliced))
    services.print_job_transition(job=job, status=PrintJobStatus.ASSIGNED)
    job = services.print_job_transition(job=job, status=PrintJobStatus.SENT)
    PrintJob.objects.filter(pk=job.pk).update(printer=printer)
    attempt = PrintAttempt.objects.create(job=job, number=1, printer=printer, file_name=name)
    return printer, fed, attempt


@pytest.fixture
def printed(report):
    """A dispatched print on a printer with a loaded PETG spool; call it with the states the printer reports
    after it started (layer 1, 5 %); returns (the slot's allocation, the spool)."""
    def run(*states):
        printer, fed, attempt = _sent("bracket.gcode")
        report(printer, PrinterState.IDLE)
        report(printer, PrinterState.PRINTING, job_key="5", current_file="bracket.gcode", layer=1,
               progress_percent=5.0)
        for state, fields in states:
            report(printer, state, job_key="5", current_file="bracket.gcode", **fields)
        fed.refresh_from_db()
        return SlotAllocation.objects.get(attempt=attempt), fed
    return run


def test_inside_the_layer_the_printers_progress_places_the_booking(settings, printed):
    settings.PRODUCTION_BOOK_INSIDE_LAYER = True
    # 50 % on layer 3: the file's percent is 50 throughout layer 3, so halfway through it.
    allocation, fed = printed((PrinterState.PRINTING, {"layer": 3, "progress_percent": 50.0}),
                              (PrinterState.FAILED, {"progress_percent": 50.0}))
    assert allocation.grams_booked == Decimal("4.375")  # 3.125 + half of layer 3's 2.5 g
    movement = Movement.objects.get(spool=fed, kind=MovementKind.FAILED_PRINT)
    assert movement.delta_grams == Decimal("-4.375") and fed.remaining_grams == Decimal("995.625")


def test_a_progress_the_file_places_before_the_layer_books_the_layers_before_it(settings, printed):
    settings.PRODUCTION_BOOK_INSIDE_LAYER = True
    # 25 % is where layer 2 runs: on layer 3 the printer has just begun it.
    allocation, _fed = printed((PrinterState.PRINTING, {"layer": 3, "progress_percent": 25.0}),
                               (PrinterState.CANCELLED, {"progress_percent": 25.0}))
    assert allocation.grams_booked == Decimal("3.125")


def test_without_a_reported_progress_the_whole_layer_in_progress_is_booked(settings, report):
    settings.PRODUCTION_BOOK_INSIDE_LAYER = True
    printer, _fed, attempt = _sent("lever.gcode")
    report(printer, PrinterState.IDLE)
    report(printer, PrinterState.PRINTING, job_key="7", current_file="lever.gcode", layer=2)
    report(printer, PrinterState.FAILED, job_key="7", current_file="lever.gcode")
    assert SlotAllocation.objects.get(attempt=attempt).grams_booked == Decimal("3.125")  # layers 1..2


def test_off_by_default_a_failure_books_layers_one_to_k_whatever_the_progress(printed, settings):
    assert settings.PRODUCTION_BOOK_INSIDE_LAYER is False
    allocation, _fed = printed((PrinterState.PRINTING, {"layer": 3, "progress_percent": 50.0}),
                               (PrinterState.FAILED, {"progress_percent": 50.0}))
    assert allocation.grams_booked == Decimal("5.625")

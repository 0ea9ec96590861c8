"""The printer's word closes the loop: a printer job that starts is linked, adopted or recorded as unknown;
when it ends, its filament is booked once on the spool that fed each slot and a completed print adds stock."""

from decimal import Decimal

import pytest

from inventory.choices import MovementKind
from inventory.models import Movement, Product, ProductMovement
from inventory.selectors import product_units, spool_ledger_total
from printers import services as printer_services
from printers.choices import PrinterState
from printers.models import PrinterJob
from printers.state import NormalisedState
from production import services
from production.choices import AttemptOutcome, PrintJobStatus, SpoolSource
from production.models import PrintAttempt, PrinterStation, PrintJob, SlotAllocation, UnknownPrint
from production.tests.factories import FilamentFactory, PrinterFactory, SlicedFileFactory, VersionFactory, spool

pytestmark = pytest.mark.django_db

# Four layers, one slot: cumulative 100, 250, 450, 700 mm at 0.0125 g/mm → 1.25, 3.125, 5.625, 8.75 g.
LAYERS = {"1": {"source": "test", "layer_count": 4, "slot_count": 1, "z": [0.2, 0.4, 0.6, 0.8], "slots": [0],
                "mm": [[100.0, 250.0, 450.0, 700.0]], "g_per_mm": [0.0125]}}


@pytest.fixture
def signals(django_capture_on_commit_callbacks):
    """Report a state as the printer listener does, with the signals sent after the commit."""
    def report(printer, state, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            printer_services.printer_apply_state(printer=printer, state=NormalisedState(state=state, **fields))
    return report


def _version(name="bracket.gcode", grams=8.75, layers=None):
    from catalog.tests.factories import metadata

    sliced = SlicedFileFactory(original_name=name, layers=layers or {},
                               metadata=metadata(filament_used_g=[grams], filament_type=["PETG"],
                                                 filament_colour=["#FF8000"]))
    return VersionFactory(sliced_file=sliced)


def _sent(version, printer, file_name):
    job = services.print_job_create(version=version)
    services.print_job_transition(job=job, status=PrintJobStatus.ASSIGNED)
    job = services.print_job_transition(job=job, status=PrintJobStatus.SENT)
    PrintJob.objects.filter(pk=job.pk).update(printer=printer)
    return PrintAttempt.objects.create(job=job, number=1, printer=printer, file_name=file_name)


def _petg(grams="1000"):
    return spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams=grams)


def test_a_dispatched_print_that_completes_books_its_grams_on_the_loaded_spool_and_adds_a_unit(signals):
    printer = PrinterFactory()
    loaded, other = _petg(), _petg("500")  # the other one would be the better match: the loaded one wins
    services.spool_load(printer=printer, tray=0, spool=loaded)
    version = _version()
    attempt = _sent(version, printer, "bracket.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="11", current_file="/usb/BRACKET.GCODE", progress_percent=2.0)
    attempt.refresh_from_db()
    assert attempt.printer_job is not None and attempt.job.status == PrintJobStatus.PRINTING
    slot = SlotAllocation.objects.get(attempt=attempt)
    assert (slot.spool, slot.spool_source, slot.grams_planned) == (loaded, SpoolSource.LOADED, Decimal("8.750"))

    signals(printer, PrinterState.FINISHED, job_key="11", current_file="/usb/BRACKET.GCODE", progress_percent=100.0)
    attempt.refresh_from_db()
    slot.refresh_from_db()
    loaded.refresh_from_db()
    other.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.COMPLETED and attempt.job.status == PrintJobStatus.COMPLETED
    assert slot.grams_booked == Decimal("8.750")
    assert loaded.remaining_grams == Decimal("991.25") == spool_ledger_total(spool=loaded)
    assert other.remaining_grams == Decimal("500")
    product = Product.objects.get(variant=version.variant)
    assert product_units(product=product) == 1
    assert PrinterStation.objects.get(printer=printer).plate_clear is False


def test_a_failure_at_layer_k_books_exactly_layers_one_to_k(signals):
    printer = PrinterFactory()
    fed = _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    attempt = _sent(_version(layers=LAYERS), printer, "bracket.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="5", current_file="bracket.gcode", layer=1, progress_percent=5.0)
    signals(printer, PrinterState.PRINTING, job_key="5", current_file="bracket.gcode", layer=3, progress_percent=40.0)
    signals(printer, PrinterState.FAILED, job_key="5", current_file="bracket.gcode", progress_percent=41.0)
    attempt.refresh_from_db()
    fed.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.FAILED and attempt.job.status == PrintJobStatus.FAILED
    assert SlotAllocation.objects.get(attempt=attempt).grams_booked == Decimal("5.625")
    movement = Movement.objects.get(spool=fed, kind=MovementKind.FAILED_PRINT)
    assert movement.delta_grams == Decimal("-5.625")  # the ledger keeps what was extruded, to the microgram
    assert "-5.63 g" in str(movement)  # shown to people rounded to 0.01 g
    assert not ProductMovement.objects.exists()


def test_a_cancelled_print_of_a_file_without_layers_books_progress_times_grams(signals):
    printer = PrinterFactory()
    fed = _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    attempt = _sent(_version(grams=20.0), printer, "bracket.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="6", current_file="bracket.gcode", progress_percent=25.0)
    signals(printer, PrinterState.CANCELLED, job_key="6", current_file="bracket.gcode", progress_percent=25.0)
    attempt.refresh_from_db()
    assert attempt.job.status == PrintJobStatus.CANCELLED
    assert SlotAllocation.objects.get(attempt=attempt).grams_booked == Decimal("5.000")
    fed.refresh_from_db()
    assert fed.remaining_grams == Decimal("995.00")


def test_a_catalog_file_started_by_hand_is_adopted_with_the_best_spool_in_stock(signals):
    printer = PrinterFactory()
    filament = FilamentFactory(material="PETG", colour_hex="#FF8000")
    small, big, short = spool(filament, grams="50"), spool(filament, grams="900"), spool(filament, grams="5")
    version = _version(name="hook.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="8", current_file="hook.gcode", progress_percent=1.0)
    job = PrintJob.objects.get(unplanned=True)
    assert job.version == version and job.status == PrintJobStatus.PRINTING and job.printer == printer
    slot = SlotAllocation.objects.get(attempt__job=job)
    assert slot.spool == small and slot.spool_source == SpoolSource.MATCHED  # the least left that has enough
    signals(printer, PrinterState.FINISHED, job_key="8", current_file="hook.gcode", progress_percent=100.0)
    small.refresh_from_db()
    big.refresh_from_db()
    short.refresh_from_db()
    assert (small.remaining_grams, big.remaining_grams, short.remaining_grams) == (
        Decimal("41.25"), Decimal("900"), Decimal("5"))
    assert product_units(product=Product.objects.get(variant=version.variant)) == 1


def test_a_print_of_an_unknown_file_is_recorded_for_staff(signals):
    printer = PrinterFactory()
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="9", current_file="mystery.gcode", progress_percent=1.0)
    signals(printer, PrinterState.FINISHED, job_key="9", current_file="mystery.gcode", progress_percent=100.0)
    unknown = UnknownPrint.objects.get()
    assert unknown.file_name == "mystery.gcode" and unknown.outcome == AttemptOutcome.COMPLETED
    assert not PrintJob.objects.exists() and not Movement.objects.filter(kind=MovementKind.USED).exists()


def test_the_same_printer_job_reported_twice_books_once(signals):
    printer = PrinterFactory()
    fed = _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    attempt = _sent(_version(), printer, "bracket.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="12", current_file="bracket.gcode", progress_percent=1.0)
    signals(printer, PrinterState.FINISHED, job_key="12", current_file="bracket.gcode", progress_percent=100.0)
    signals(printer, PrinterState.FINISHED, job_key="12", current_file="bracket.gcode", progress_percent=100.0)
    printer_job = PrinterJob.objects.get(printer=printer)
    for _replay in range(2):  # a replayed signal, a second worker
        services.printer_job_started(printer_job=printer_job)
        services.printer_job_finished(printer_job=printer_job, outcome="completed")
    attempt.refresh_from_db()
    fed.refresh_from_db()
    assert fed.remaining_grams == Decimal("991.25")
    assert Movement.objects.filter(spool=fed, kind=MovementKind.USED).count() == 1
    assert ProductMovement.objects.count() == 1 and PrintAttempt.objects.count() == 1


def test_a_correction_moves_the_booked_grams_to_the_right_spool(signals):
    printer = PrinterFactory()
    filament = FilamentFactory(material="PETG", colour_hex="#FF8000")
    wrong, right = spool(filament, grams="100"), spool(filament, grams="1000")  # the match takes the smaller
    signals(printer, PrinterState.IDLE)
    _version(name="clip.gcode")
    signals(printer, PrinterState.PRINTING, job_key="3", current_file="clip.gcode", progress_percent=1.0)
    signals(printer, PrinterState.FINISHED, job_key="3", current_file="clip.gcode", progress_percent=100.0)
    slot = SlotAllocation.objects.get()
    assert slot.spool == wrong and slot.grams_booked == Decimal("8.750")
    services.slot_allocation_correct(allocation=slot, spool=right)
    wrong.refresh_from_db()
    right.refresh_from_db()
    slot.refresh_from_db()
    assert (wrong.remaining_grams, right.remaining_grams) == (Decimal("100.00"), Decimal("991.25"))
    assert slot.spool == right and slot.spool_source == SpoolSource.CORRECTED
    assert spool_ledger_total(spool=wrong) == wrong.remaining_grams


def test_a_slot_no_spool_fits_is_booked_when_staff_choose_the_spool(signals):
    printer = PrinterFactory()
    signals(printer, PrinterState.IDLE)
    _version(name="clip.gcode")
    signals(printer, PrinterState.PRINTING, job_key="4", current_file="clip.gcode", progress_percent=1.0)
    signals(printer, PrinterState.FINISHED, job_key="4", current_file="clip.gcode", progress_percent=100.0)
    slot = SlotAllocation.objects.get()
    assert slot.spool is None and slot.grams_booked is None
    assert "no spool" in slot.attempt.reason
    chosen = _petg()
    services.slot_allocation_correct(allocation=slot, spool=chosen)
    chosen.refresh_from_db()
    assert chosen.remaining_grams == Decimal("991.25")


def test_loading_a_spool_moves_it_out_of_its_previous_slot_and_refuses_bad_slots():
    printer = PrinterFactory()
    fed = _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    services.spool_load(printer=printer, tray=2, spool=fed)
    from production.models import SpoolLoad
    assert list(SpoolLoad.objects.values_list("tray", flat=True)) == [2]
    from fablab.exceptions import InvalidInput
    with pytest.raises(InvalidInput):
        services.spool_load(printer=printer, tray=300, spool=fed)


def test_the_job_page_the_api_and_the_station_show_what_the_printer_did(signals, operator_client):
    from django.urls import reverse

    from fablab.choices import ApiKeyScope, OrganizationKind
    from fablab.tests.factories import OrganizationFactory, make_api_key
    from fablab.tests.helpers import ApiClient

    printer = PrinterFactory()
    fed = _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    lab = OrganizationFactory(kind=OrganizationKind.LAB)
    attempt = _sent(_version(layers=LAYERS), printer, "bracket.gcode")
    PrintJob.objects.filter(pk=attempt.job_id).update(organization=lab)
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="21", current_file="bracket.gcode", layer=2, progress_percent=9.0)
    signals(printer, PrinterState.FAILED, job_key="21", current_file="bracket.gcode", progress_percent=30.0)
    page = operator_client.get(reverse("admin:production_printjob_change", args=[attempt.job_id]))
    assert page.status_code == 200 and fed.code in page.content.decode() and "3.125" in page.content.decode()
    _key, raw = make_api_key(lab, scope=ApiKeyScope.READ)
    body = ApiClient(raw).get(f"/api/v1/production/jobs/{attempt.job_id}").json()
    assert body["printer_id"] == printer.pk and body["attempts"] == 1 and body["filament_booked_g"] == [3.125]
    assert body["status"] == "failed" and body["started_at"] and body["finished_at"]
    station = PrinterStation.objects.get(printer=printer)
    response = operator_client.post(reverse("admin:production_printerstation_changelist"),
                                    {"action": "plate_cleared", "_selected_action": [station.pk]})
    assert response.status_code == 302
    station.refresh_from_db()
    assert station.plate_clear is True

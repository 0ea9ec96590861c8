"""The spool in a printer slot told by its RFID tag: a Bambu tray's `tray_uuid` names a spool in stock.

Who fed a slot, first found first: the spool staff loaded into that tray, the spool whose tag the tray
reads, the best match in stock. Dispatch counts a tagged tray's spool by its own grams left.
"""

import io

import pytest

from fablab.exceptions import Conflict
from printers.choices import PrinterState
from printers.drivers.bambu import apply_message, normalise
from printers.tests.conftest import bambu_corpus
from production import services
from production.choices import SpoolSource
from production.models import PrintAttempt, SlotAllocation
from production.tests.factories import BambuPrinterFactory, FilamentFactory, bambu_file, live, spool, version

pytestmark = pytest.mark.django_db

X1C = "hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json"  # 12 Bambu spools, each with its tray_uuid
P1P = "hab_p1p_ams_failed_pushall_getversion.json"  # 4 trays of PLA without tags (all-zero ids)
BLACK_PLA_TAG = "5F3D8925633343C29FB9A97FA9125971"  # the X1C's AMS 0 tray 0: PLA Matte #000000, 93 %
WHITE_ABS_TAG = "53274C367223430D9F1BDAE5E0B5C5D2"  # its AMS 1 tray 2 (slot 6): ABS #FFFFFF


def _printer(corpus_name: str, name: str = "Farm X1C"):
    """A Bambu printer, idle and online, whose AMS is the one a real printer reported (the corpus payload)."""
    state = normalise(apply_message({}, bambu_corpus(corpus_name))[0])
    printer = BambuPrinterFactory(name=name, model="X1C")
    return live(printer, state=PrinterState.IDLE, online=True, filament_slots=state.filament_slots,
                nozzle_type=state.nozzle_type, nozzle_diameter_mm=state.nozzle_diameter_mm)


def _queued(material="PLA", colour="#000000", grams=6.75):
    version_ = version(**bambu_file(filament_type=[material], filament_colour=[colour], filament_used_g=[grams]))
    version_.sliced_file.original_name = "cube.gcode.3mf"
    version_.sliced_file.save()
    version_.sliced_file.file.save("cube.gcode.3mf", io.BytesIO(b"PK cube"), save=True)
    return version_


def _allocation(job) -> SlotAllocation:
    return SlotAllocation.objects.get(attempt=PrintAttempt.objects.get(job=job))


def test_the_tray_whose_tag_names_a_spool_in_stock_books_on_that_spool(sent):
    printer = _printer(X1C)
    black = FilamentFactory(material="PLA", colour_hex="#000000")
    tagged = spool(black, grams="120", rfid_tag=BLACK_PLA_TAG.lower())
    spool(black, grams="50")  # the best match in stock (least left that is enough): not what the AMS holds
    job = services.print_job_create(version=_queued())
    assert services.print_job_dispatch(job=job).printer == printer
    assert sent[-1] == ("start", printer.name, "/cube.gcode.3mf", [0])
    allocation = _allocation(job)
    assert (allocation.tray, allocation.spool, allocation.spool_source) == (0, tagged, SpoolSource.RFID)


def test_a_spool_staff_loaded_into_the_tray_comes_before_the_tag(sent):
    printer = _printer(X1C)
    black = FilamentFactory(material="PLA", colour_hex="#000000")
    spool(black, grams="120", rfid_tag=BLACK_PLA_TAG)
    loaded = spool(black, grams="700")
    services.spool_load(printer=printer, tray=0, spool=loaded)
    job = services.print_job_create(version=_queued())
    services.print_job_dispatch(job=job)
    allocation = _allocation(job)
    assert (allocation.tray, allocation.spool, allocation.spool_source) == (0, loaded, SpoolSource.LOADED)


def test_without_a_spool_of_that_tag_in_stock_the_best_match_is_booked(sent):
    _printer(X1C)
    black = FilamentFactory(material="PLA", colour_hex="#000000")
    archived = spool(black, grams="500", rfid_tag=BLACK_PLA_TAG)
    services.inventory_services.spool_archive(spool=archived)  # the tag's spool is no longer in stock
    best = spool(black, grams="300")
    job = services.print_job_create(version=_queued())
    services.print_job_dispatch(job=job)
    allocation = _allocation(job)
    assert (allocation.tray, allocation.spool, allocation.spool_source) == (0, best, SpoolSource.MATCHED)


def test_trays_without_tags_all_zero_ids_fall_back_to_the_best_match(sent):
    printer = _printer(P1P, name="Farm P1P")
    purple = FilamentFactory(material="PLA", colour_hex="#D357FE")
    spool(purple, grams="800", rfid_tag="0000000100000100")  # a tagged spool that is not in this printer
    best = spool(purple, grams="300")
    job = services.print_job_create(version=_queued(colour="#D357FE"))
    assert services.print_job_dispatch(job=job).printer == printer
    allocation = _allocation(job)
    assert allocation.spool == best and allocation.spool_source == SpoolSource.MATCHED


def test_dispatch_counts_a_tagged_tray_by_its_spools_own_grams(sent):
    # The AMS says 93 % (930 g of a full spool); the spool its tag names has 5 g left: not enough for 6.75 g.
    _printer(X1C)
    black = FilamentFactory(material="PLA", colour_hex="#000000")
    tagged = spool(black, grams="5", rfid_tag=BLACK_PLA_TAG)
    spool(black, grams="500")  # stock enough for the queue: the job is feasible
    job = services.print_job_create(version=_queued())
    with pytest.raises(Conflict):
        services.print_job_dispatch(job=job)
    assert sent == []
    services.inventory_services.spool_adjust(spool=tagged, remaining_grams=400, idempotency_key="count-1",
                                             reason="counted")
    assert services.print_job_dispatch(job=job).pk == job.pk


def test_a_print_started_by_hand_takes_the_tagged_spool_that_fits_the_slot(django_capture_on_commit_callbacks):
    from printers import services as printer_services
    from printers.state import NormalisedState

    printer = _printer(X1C)
    white = FilamentFactory(material="ABS", colour_hex="#FFFFFF")
    tagged = spool(white, grams="600", rfid_tag=WHITE_ABS_TAG)
    spool(white, grams="100")
    version_ = _queued(material="ABS", colour="#FFFFFF")
    version_.sliced_file.original_name = "hook.gcode.3mf"
    version_.sliced_file.save()
    slots = printer.live.filament_slots
    with django_capture_on_commit_callbacks(execute=True):
        printer_services.printer_apply_state(printer=printer, state=NormalisedState(
            state=PrinterState.PRINTING, job_key="77", current_file="hook.gcode.3mf", filament_slots=slots))
    attempt = PrintAttempt.objects.get(printer_job__printer=printer)
    allocation = SlotAllocation.objects.get(attempt=attempt)
    assert attempt.job.unplanned and allocation.tray is None  # which tray fed it, the file does not say
    assert (allocation.spool, allocation.spool_source) == (tagged, SpoolSource.RFID)

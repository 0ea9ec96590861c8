"""printers.signals.printer_changed: sent once a change of what the fleet can print commits."""

import copy
from dataclasses import replace

import pytest
from django.dispatch import receiver

from printers import services
from printers.choices import Driver, PrinterState
from printers.drivers.bambu import apply_message, normalise
from printers.models import Printer
from printers.signals import printer_changed
from printers.state import NormalisedState, offline_state
from printers.tests.conftest import bambu_corpus
from printers.tests.factories import BambuPrinterFactory

pytestmark = pytest.mark.django_db

X1C = "hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json"


@pytest.fixture
def heard():
    """(sender, printer id, changes) of each printer_changed sent."""
    sent = []

    @receiver(printer_changed, dispatch_uid="test.printer_changed")
    def listen(sender, printer_id, changes: list, **kwargs):
        sent.append((sender, printer_id, changes))

    yield sent
    printer_changed.disconnect(dispatch_uid="test.printer_changed")


def _x1c_state() -> NormalisedState:
    return normalise(apply_message({}, bambu_corpus(X1C))[0])


def test_a_printer_added_or_edited_is_a_change_once_it_commits(heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        printer = services.printer_create(name="New X1C", driver=Driver.BAMBU, host="10.0.0.9", model="X1C",
                                          serial="00M00A000000001")
        assert heard == []  # not before the commit
    assert heard == [(Printer, printer.pk, ["added"])]
    with django_capture_on_commit_callbacks(execute=True):
        services.printer_update(printer=printer, bed_z_mm=300)
        services.printer_update(printer=printer)  # nothing changed: nothing to say
    assert heard[1:] == [(Printer, printer.pk, ["settings"])]


def test_reports_tell_when_the_printer_comes_online_or_its_nozzle_or_filaments_change(
        heard, django_capture_on_commit_callbacks):
    printer = BambuPrinterFactory()
    state = _x1c_state()

    def report(value):
        heard.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.printer_apply_state(printer=printer, state=value)
        return [changes for _sender, _id, changes in heard]

    assert report(state) == [["online", "nozzle", "filaments"]]
    assert report(state) == []  # the same again
    fuller = copy.deepcopy(state.filament_slots)
    fuller[0]["remaining_percent"] = 92
    assert report(replace(state, filament_slots=fuller, nozzle_temp_c=215.0)) == []  # a percent less is no change
    swapped = copy.deepcopy(fuller)
    swapped[0]["tag"] = "00112233445566778899AABBCCDDEEFF"  # another spool in AMS 0 tray 0
    assert report(replace(state, filament_slots=swapped)) == [["filaments"]]
    assert report(replace(state, filament_slots=swapped, nozzle_diameter_mm=0.6)) == [["nozzle"]]
    assert report(offline_state(reason="lost")) == []
    assert report(replace(state, state=PrinterState.IDLE, filament_slots=swapped, nozzle_diameter_mm=0.6)) == [
        ["online"]]

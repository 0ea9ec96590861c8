"""Feasibility: filament (material, colour, grams after the jobs ahead) and printer (model, nozzle, height)."""

import pytest

from fablab.tests.helpers import slicer_expected
from inventory.matching import material_key
from production import services
from production.feasibility import model_takes_file, printer_model_key
from production.tests.factories import (
    BambuPrinterFactory,
    FilamentFactory,
    PrinterFactory,
    bambu_file,
    job,
    live,
    spool,
    version,
)

pytestmark = pytest.mark.django_db


def texts(item) -> list[str]:
    from production import selectors

    item.refresh_from_db()
    return selectors.print_job_feasibility_texts(job=item)


@pytest.mark.parametrize(("a", "b"), [("PLA Basic", "PLA"), ("pla", "PLA"), ("PA-CF", "PA12-CF"),
                                      ("PA CF", "PA12-CF"), ("PETG_CF", "PETG-CF")])
def test_equivalent_material_names_are_one(a, b):
    assert material_key(a) == material_key(b)


def test_different_materials_stay_apart():
    assert material_key("PETG") != material_key("PETG-CF")
    assert material_key("PLA") != material_key("PLA-CF")


@pytest.mark.parametrize(("printer", "file", "takes"), [
    ("P1S", "Bambu Lab X1 Carbon", True),
    ("X1E", "Bambu Lab X1 Carbon", True),
    ("X1C", "Bambu Lab P1S", True),
    ("A1 mini", "Bambu Lab X1 Carbon", False),
    ("Core One", "Bambu Lab X1 Carbon", False),
    ("Core One", "COREONE", True),
    ("MK4S", "MK4S", True),
    ("MK4", "MK4IS", True),
    ("MINI", "MK4S", False),
    ("Voron 2.4", "Voron_v2_300_aferburner", False),
    ("Voron_v2_300_aferburner", "Voron_v2_300_aferburner", True),
])
def test_printer_model_compatibility(printer, file, takes):
    assert model_takes_file(printer, file) is takes


def test_every_printer_model_the_corpus_names_from_bambu_and_prusa_is_known():
    names = {f.get("printer_model") for f in slicer_expected().values()}
    known = [n for n in names if n and (n.startswith("Bambu Lab") or n in {"MK4S", "MK4IS", "MINI", "COREONE"})]
    assert known and all(printer_model_key(n) for n in known), known


def test_a_job_with_stock_and_a_fitting_printer_is_feasible():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    PrinterFactory(model="MK4S")
    item = job()
    assert item.feasible is True and item.feasibility_reasons == []


def test_equivalent_material_and_a_close_colour_count_as_stock():
    spool(FilamentFactory(material="PLA Basic", colour_hex="#01AF43"))  # Bambu green, a shade off
    BambuPrinterFactory(model="X1C")
    item = job(version(**bambu_file()))
    assert item.feasible is True, texts(item)


def test_another_colour_is_not_stock():
    spool(FilamentFactory(material="PLA", colour_hex="#FF0000"))
    BambuPrinterFactory(model="X1C")
    item = job(version(**bambu_file()))
    assert texts(item) == ["Slot 1 needs PLA #00AE42: there is none in stock."]


def test_grams_short_are_counted_after_the_jobs_ahead():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="40")
    PrinterFactory(model="MK4S")
    first, second, third = job(), job(), job(copies=2)  # 12.5, 12.5, then 25 g of 15 g left
    for item in (first, second):
        item.refresh_from_db()
        assert item.feasible is True
    assert texts(third) == ["Slot 1 needs PETG #FF8000: 10 g short after the 2 jobs ahead."]
    lone = job(version(filament_used_g=[50.0]), priority="urgent")
    assert texts(lone) == ["Slot 1 needs PETG #FF8000: 10 g short (50 g needed)."]


def test_an_urgent_job_takes_the_filament_before_the_jobs_already_queued():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="20")
    PrinterFactory(model="MK4S")
    normal = job()
    urgent = job(priority="urgent")
    normal.refresh_from_db()
    assert urgent.feasible is True
    assert texts(normal) == ["Slot 1 needs PETG #FF8000: 5 g short after the job ahead."]


def test_slots_the_plate_does_not_use_need_nothing():
    corpus = slicer_expected()["bambustudio-02.05.00.66_p1s_slot3-petgcf.gcode.3mf"]
    fields = {k: corpus[k] for k in ("printer_model", "nozzle_diameter", "filament_type", "filament_colour",
                                     "filament_used_g", "object_height")}
    live(BambuPrinterFactory(name="Hardened", model="P1S"), nozzle_type="hardened_steel", nozzle_diameter_mm=0.4)
    item = job(version(**fields))
    assert texts(item) == ["Slot 3 needs PETG-CF #2850E0: there is none in stock."]
    spool(FilamentFactory(material="PETG CF", colour_hex="#2850E0"), grams="15")
    services.print_jobs_recheck()
    assert texts(item) == []
    assert item.feasible is True


def test_abrasive_filament_needs_a_hardened_nozzle():
    spool(FilamentFactory(material="PETG-CF", colour_hex="#BCBCBC"))
    live(BambuPrinterFactory(name="Steel", model="P1S"), nozzle_type="stainless_steel")
    PrinterFactory(name="Unknown nozzle", model="P1S")
    item = job(version(**bambu_file(filament_type=["PETG-CF"], filament_colour=["#BCBCBC"])))
    assert texts(item) == [
        "No printer takes it: Steel has a stainless steel nozzle, PETG-CF needs a hardened one; "
        "Unknown nozzle does not report its nozzle type, PETG-CF needs a hardened one."]


def test_a_file_for_an_x1_carbon_goes_to_a_p1s_but_never_to_a_core_one_or_an_a1_mini():
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"))
    PrinterFactory(name="Core One", model="Core One")
    BambuPrinterFactory(name="Mini", model="A1 mini")
    item = job(version(**bambu_file()))
    assert texts(item) == [
        "No printer takes it: the file was sliced for the Bambu Lab X1 Carbon; Core One is a Prusa CORE One; "
        "the file was sliced for the Bambu Lab X1 Carbon; Mini is a Bambu Lab A1 mini."]
    BambuPrinterFactory(name="P1S", model="P1S")
    item = job(version(**bambu_file()))
    assert item.feasible is True


def test_the_nozzle_diameter_and_the_build_height_must_fit():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    live(PrinterFactory(name="Fine", model="MK4S"), nozzle_diameter_mm=0.25)
    PrinterFactory(name="Short", model="MK4S", bed_z_mm=15)
    item = job(version(object_height=20.0))
    assert texts(item) == ["No printer takes it: Fine has a 0.25 mm nozzle, the file needs 0.4 mm; "
                           "Short builds up to 15 mm, the object is 20 mm tall."]


def test_no_active_printer_is_a_reason_and_inactive_printers_do_not_count():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    PrinterFactory(model="MK4S", is_active=False)
    assert texts(job()) == ["No printer takes it: there is no active printer."]


def test_a_file_still_being_read_is_not_feasible_yet():
    target = version()
    target.sliced_file.status = "pending"
    target.sliced_file.save()
    assert texts(job(target)) == ["The file's metadata is not read yet (Waiting); the job is checked again once "
                                  "it is."]


def test_the_plate_of_a_multi_plate_file_decides_what_is_needed():
    plates = [{"index": 1, "fields": bambu_file(filament_used_g=[6.75])},
              {"index": 2, "fields": bambu_file(filament_used_g=[30.0])}]
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"), grams="10")
    BambuPrinterFactory(model="X1C")
    target = version(plates=plates, **bambu_file())
    assert job(target, plate=1, priority="low").feasible is True
    assert texts(job(target, plate=2)) == ["Slot 1 needs PLA #00AE42: 20 g short (30 g needed)."]


def test_reasons_are_shown_in_the_readers_language():
    from django.utils import translation

    PrinterFactory(model="MK4S", is_active=False)
    item = job()
    with translation.override("de"):
        german = texts(item)
    assert len(german) == 2 and german != texts(item)

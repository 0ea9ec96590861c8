"""The matcher finds the right spools for every filament slot of the slicer corpus.

The stock is built here, from the corpus itself: for every material and colour a corpus slot
asks for, one filament in a near shade (the one meant for it) and one in a farther shade of
the same material, each with a spool. Carbon-filled materials (PETG-CF, PA-CF, ...) also get
their base material in the very colour of the slot, which must never be taken for them.
"""

from decimal import Decimal

import pytest

from fablab.tests.helpers import slicer_expected
from inventory import services
from inventory.matching import delta_e, match_slots, normalise_hex, normalise_material
from inventory.models import Filament
from inventory.tests.factories import spool

pytestmark = pytest.mark.django_db

# Slots of the corpus that state both a material and a colour (49 files, expected.json).
CORPUS_SLOTS_WITH_COLOUR = 57


def _slots(expected: dict):
    """(file name, materials, colours) of every corpus file that states both."""
    for name, entry in sorted(expected.items()):
        materials, colours = entry.get("filament_type") or [], entry.get("filament_colour") or []
        if materials and colours:
            yield name, materials, colours


def _shade(colour: str, step: int) -> str:
    """The colour moved `step` units towards mid-grey on each channel: a near, different shade."""
    channels = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{c + step if c < 128 else c - step:02X}" for c in channels)


def _filament(material: str, colour: str, name: str) -> Filament:
    filament = services.filament_create(brand="Test", material=material, name=name, colour_hex=colour,
                                        cost_per_kg=Decimal("25.00"), net_weight_g=Decimal("1000"),
                                        spool_weight_g=Decimal("200"))
    spool(filament, grams="750")
    return filament


def _stock_for(expected: dict) -> dict:
    """Filaments that fit the corpus slots; returns {(material, colour): the filament meant for it}."""
    wanted = set()
    for _name, materials, colours in _slots(expected):
        for material, colour in zip(materials, colours, strict=False):
            hex_colour = normalise_hex(colour)
            if material and hex_colour:
                wanted.add((material, hex_colour))
    meant = {}
    for material, colour in sorted(wanted):
        meant[(normalise_material(material), colour)] = _filament(material, _shade(colour, 3), f"{colour} near")
        _filament(material, _shade(colour, 14), f"{colour} far")
        base, _dash, filler = material.rpartition("-")
        if base and filler.upper() == "CF":
            _filament(base, colour, f"{colour} unfilled")
    return meant


def test_every_corpus_slot_finds_its_filament():
    expected = slicer_expected()
    meant_for = _stock_for(expected)
    stock = [(normalise_material(f.material), f) for f in Filament.objects.all()]
    checked = 0
    for name, materials, colours in _slots(expected):
        for slot in match_slots(materials=materials, colours=colours):
            if slot.colour is None or not slot.material:
                continue
            # The filament meant for this slot: same material, the nearest colour.
            meant = [f for m, f in stock if m == slot.material]
            if not meant:
                continue
            checked += 1
            assert slot.best is not None, f"{name} slot {slot.slot}: {slot.material} {slot.colour} found nothing"
            best_possible = min(meant, key=lambda f: _distance(f.colour_hex, slot.colour))
            assert slot.best.filament == best_possible, f"{name} slot {slot.slot}"
            assert slot.best.filament == meant_for[(slot.material, slot.colour)], f"{name} slot {slot.slot}"
            assert slot.best.spool_codes
            assert all(normalise_material(c.filament.material) == slot.material for c in slot.candidates)
    assert checked >= 40
    assert checked >= CORPUS_SLOTS_WITH_COLOUR


def test_a_carbon_filled_slot_takes_only_carbon_filled_filament():
    """PETG-CF (Bambu P1S, slot 3 of the corpus file) is its own material, not PETG with a colour."""
    expected = slicer_expected()["bambustudio-02.05.00.66_p1s_slot3-petgcf.gcode.3mf"]
    plain = _filament("PETG", "#2850E0", "Blue")
    filled = _filament("PETG-CF", "#3060D8", "Blue CF")
    slots = match_slots(materials=expected["filament_type"], colours=expected["filament_colour"])
    assert slots[2].material == "PETG-CF"
    assert [c.filament for c in slots[2].candidates] == [filled]
    [petg] = match_slots(materials=["PETG"], colours=["#2850E0"])
    assert [c.filament for c in petg.candidates] == [plain]


def test_a_slot_whose_colour_nothing_in_stock_comes_near_finds_nothing():
    """Grey ASA (slot 2 of the same file) with only orange ASA in stock: no candidate, by design."""
    _filament("ASA", "#FF7E04", "Orange")
    expected = slicer_expected()["bambustudio-02.05.00.66_p1s_slot3-petgcf.gcode.3mf"]
    slots = match_slots(materials=expected["filament_type"], colours=expected["filament_colour"])
    assert (slots[1].material, slots[1].colour) == ("ASA", "#BCBCBC")
    assert slots[1].best is None


def _distance(a, b):
    return delta_e(normalise_hex(a), b)

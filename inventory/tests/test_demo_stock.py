"""The matcher finds the right spools for every corpus slot whose material and colour the demo stocks."""

import pytest
from django.core.management import call_command

from fablab.tests.helpers import slicer_expected
from inventory.matching import match_slots, normalise_hex, normalise_material
from inventory.models import Filament

pytestmark = pytest.mark.django_db


def test_every_corpus_slot_with_demo_stock_finds_its_filament(capsys):
    call_command("demo")
    expected = slicer_expected()
    stock = [(normalise_material(f.material), f) for f in Filament.objects.all()]
    checked = 0
    for name, entry in expected.items():
        materials, colours = entry.get("filament_type") or [], entry.get("filament_colour") or []
        if not materials or not colours:
            continue
        for slot in match_slots(materials=materials, colours=colours):
            if slot.colour is None or not slot.material:
                continue
            # The demo filament meant for this slot: same material, the nearest colour.
            meant = [f for m, f in stock if m == slot.material]
            if not meant:
                continue
            checked += 1
            assert slot.best is not None, f"{name} slot {slot.slot}: {slot.material} {slot.colour} found nothing"
            best_possible = min(meant, key=lambda f: _distance(f.colour_hex, slot.colour))
            assert slot.best.filament == best_possible, f"{name} slot {slot.slot}"
            assert slot.best.spool_codes
    assert checked >= 40


def _distance(a, b):
    from inventory.matching import delta_e

    return delta_e(normalise_hex(a), b)

from decimal import Decimal

import pytest

from inventory.matching import delta_e, match_slots, normalise_hex
from inventory.tests.factories import FilamentFactory, spool

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("raw,hex_", [
    ("#ff8000", "#FF8000"), ("FF8000", "#FF8000"), ("#F80", "#FF8800"), ("#FF8000FF", "#FF8000"),
    (" #00ae42 ", "#00AE42"), ("red", None), ("#GG0000", None), ("", None), (None, None), ("#12345", None),
])
def test_hex_normalisation(raw, hex_):
    assert normalise_hex(raw) == hex_


def test_ciede2000_is_symmetric_and_zero_for_equal_colours():
    assert delta_e("#FF8000", "#FF8000") == pytest.approx(0, abs=1e-9)
    assert delta_e("#FF8000", "#FF8800") == pytest.approx(delta_e("#FF8800", "#FF8000"), rel=1e-6)
    assert delta_e("#000000", "#FFFFFF") > 90


def test_best_colour_wins_among_near_identical_stock():
    orange = FilamentFactory(colour_hex="#FF8000", name="Orange")
    close = FilamentFactory(colour_hex="#FF8A00", name="Signal orange")
    red = FilamentFactory(colour_hex="#E00000", name="Red")
    petg = FilamentFactory(colour_hex="#FF8000", material="PETG", name="PETG orange")
    for f in (orange, close, red, petg):
        spool(f, grams="500")
    [slot] = match_slots(materials=["PLA"], colours=["#FF8203"], grams_needed=[120])
    assert [c.filament for c in slot.candidates] == [orange, close]
    assert slot.best.filament == orange and slot.enough
    assert slot.available_g == Decimal("500.00")


def test_not_enough_and_nothing_in_tolerance():
    orange = FilamentFactory(colour_hex="#FF8000")
    spool(orange, grams="100")
    [short, missing] = match_slots(materials=["PLA", "PLA"], colours=["#FF8000", "#0000FF"], grams_needed=[250, 5])
    assert short.best.filament == orange and not short.enough
    assert missing.best is None and not missing.enough


def test_brand_breaks_ties_and_multicolour_uses_its_closest_colour():
    generic = FilamentFactory(brand="Generic", colour_hex="#00AE42")
    bambu = FilamentFactory(brand="Bambu Lab", colour_hex="#00AE42")
    rainbow = FilamentFactory(brand="Rainbow", colour_hex="#FF0000", extra_colours=["#00AE42"])
    for f in (generic, bambu, rainbow):
        spool(f, grams="800")
    [slot] = match_slots(materials=["pla"], colours=["#00AE42FF"], brands=["Bambu Lab"])
    assert slot.candidates[0].filament == bambu
    assert {c.filament for c in slot.candidates} == {generic, bambu, rainbow}


def test_unknown_colours_fall_back_to_material_with_a_note():
    f = FilamentFactory(colour_hex="#123456")
    spool(f)
    [slot] = match_slots(materials=["PLA"], colours=["sparkly"])
    assert slot.best.filament == f and "not a hex colour" in slot.note
    [slot] = match_slots(materials=["PLA"], colours=[])
    assert slot.best.filament == f and "no colour" in slot.note


def test_archived_and_empty_spools_do_not_count():
    from inventory import services

    f = FilamentFactory()
    services.spool_archive(spool=spool(f, grams="900"))
    [slot] = match_slots(materials=["PLA"], colours=["#FF8000"], grams_needed=[10])
    assert slot.available_g == 0 and not slot.enough


def test_catalog_version_page_shows_stock_per_slot(admin_client, fake_reader):
    from django.urls import reverse

    from catalog import services as catalog
    from catalog.tests.factories import FakeInfo, VariantFactory, gcode_upload, metadata

    fake_reader.info = FakeInfo(fields=metadata(filament_type=["PLA", "PETG"], filament_colour=["#FF8000", "#123456"],
                                                filament_used_g=[40.0, 5.0]))
    version = catalog.variant_upload_sliced_file(variant=VariantFactory(), upload=gcode_upload())
    orange = FilamentFactory(colour_hex="#FF8000", name="Orange")
    s = spool(orange, grams="250")
    page = admin_client.get(reverse("admin:catalog_variantversion_change", args=[version.pk])).content.decode()
    assert "data-stock-match" in page
    assert "250 g available" in page and s.code in page
    assert "nothing suitable in stock" in page  # the PETG slot

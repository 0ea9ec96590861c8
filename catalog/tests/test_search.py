import pytest
from django.db import connection

from catalog import services
from catalog.selectors import VariantFilter, model_list, variant_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(db):
    def make(model_name, variant_name, sku, *, description="", tags=()):
        model = services.model_create(name=model_name, description=description, tags=tags)
        return services.variant_create(model=model, name=variant_name, sku=sku)

    return {
        "hook": make("Wall Hook", "Black", "HOOK-BLK", tags=["Hallway"]),
        "organiser": make("Desk Organiser", "Large", "ORG-L", description="Holds pens and a wall of cards"),
        "gear": make("Planetary Gear", "Standard", "GEAR-1", description="Educational gearbox"),
        "vase": make("Spiral Vase", "Tall", "VASE-T", tags=["Living room", "hook-free"]),
    }


def found(query: str) -> list[str]:
    return [v.sku for v in variant_list(filters=VariantFilter(q=query))]


def test_name_match_ranks_first(library):
    result = found("wall")
    assert result[0] == "HOOK-BLK"
    assert "ORG-L" in result  # the description mentions a wall


def test_all_words_must_match(library):
    assert found("desk large") == ["ORG-L"]
    assert found("desk gear") == []


def test_tags_sku_and_description_are_searched(library):
    assert found("hallway") == ["HOOK-BLK"]
    assert found("GEAR-1") == ["GEAR-1"]
    assert found("gearbox") == ["GEAR-1"]


def test_prefixes_match(library):
    assert "GEAR-1" in found("plan")


def test_empty_and_junk_queries(library):
    assert len(found("")) == 4
    assert found("!!! ???") == found("")
    assert found("zzzzqqq") == []


def test_search_follows_metadata_changes(library, fake_reader):
    from catalog.tests.factories import gcode_upload

    services.variant_upload_sliced_file(variant=library["gear"], upload=gcode_upload())
    assert found("mk4s") == ["GEAR-1"]
    assert found("petg") == ["GEAR-1"]


def test_models_are_found_through_their_variants(library):
    assert [m.name for m in model_list(q="tall")] == ["Spiral Vase"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="typo tolerance uses pg_trgm (PostgreSQL)")
def test_typos_still_find_on_postgresql(library):
    assert found("planetray")[:1] == ["GEAR-1"]
    assert found("organizer")[:1] == ["ORG-L"]


def test_every_word_of_long_texts_is_remembered_for_corrections(db):
    from catalog.models import SearchTerm
    from catalog.search import remember_terms

    remember_terms(" ".join(f"word{n:02d}x" for n in range(40)) + " GEAR-1 42 ab")
    terms = set(SearchTerm.objects.values_list("word", flat=True))
    assert {"word00x", "word39x", "gear"} <= terms
    assert not {"42", "ab", "1"} & terms


def test_mistyped_words_are_corrected_on_every_database(library):
    assert found("spirla")[:1] == ["VASE-T"]
    assert found("desk organsier") == ["ORG-L"]

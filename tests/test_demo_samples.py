"""The demo from a fresh clone: its catalog and stock come from the sample files the project makes itself
(catalog.samples), never from the test corpus."""

import hashlib
import io

import pytest
from django.core.management import call_command

from catalog.models import Model, ModelImage, ModelVariant, SlicedFile, SlicedFileThumbnail, VariantVersion
from catalog.samples import build_file, sample_models
from inventory.matching import match_slots
from inventory.models import Product, ProductStock, Spool


def sample_file_count() -> int:
    return sum(len(variant.versions) for model in sample_models() for variant in model.variants)


@pytest.mark.django_db
def test_demo_loads_the_sample_catalog_without_the_corpus(tmp_path, settings):
    settings.FABLAB_CORPUS = tmp_path / "no-corpus-here"
    settings.FABLAB_CORPUS.mkdir()
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert "no sample files" not in out.getvalue()

    models = sample_models()
    assert 8 <= Model.objects.count() == len(models) <= 12
    specs = {variant.sku: variant for model in models for variant in model.variants}
    assert set(ModelVariant.objects.values_list("sku", flat=True)) == set(specs)
    assert VariantVersion.objects.count() == sum(len(v.versions) for v in specs.values())
    assert SlicedFile.objects.filter(status="done").count() == SlicedFile.objects.count() == sample_file_count()
    assert SlicedFileThumbnail.objects.count() >= 2 * sample_file_count()
    assert ModelImage.objects.count() == Model.objects.count()  # one picture per model
    assert all(image.image.read(8) == b"\x89PNG\r\n\x1a\n" for image in ModelImage.objects.all())

    for variant in ModelVariant.objects.select_related("current_version__sliced_file", "model"):
        spec = specs[variant.sku]
        current = variant.current_version
        assert current.number == len(spec.versions)
        expected = build_file(spec.versions[-1])
        assert current.sliced_file.original_name == expected.name
        assert current.sliced_file.sha256 == hashlib.sha256(expected.data).hexdigest()
        assert variant.printer_model == spec.versions[-1].job.printer.printer_model
        assert float(variant.filament_used_g) == pytest.approx(expected.stats.total_grams, abs=0.01)
        assert variant.estimated_time_s == round(expected.stats.seconds)
        assert float(variant.layer_height) == spec.versions[-1].job.settings.layer_height
        assert (variant.colour, variant.material, variant.size) == (spec.colour, spec.material, spec.size)
        assert current.sliced_file.thumbnails.exists()

    keychain = ModelVariant.objects.get(sku="KEY-S-ORANGE")
    first, second = keychain.versions.order_by("number")
    assert (first.sliced_file.metadata["layer_height"], second.sliced_file.metadata["layer_height"]) == (0.3, 0.2)
    assert "0.2 mm" in second.change_note
    clip = ModelVariant.objects.get(sku="CLIP-6-BLACK")
    infill = [v.sliced_file.config["fill_density"] for v in clip.versions.order_by("number")]
    assert infill == ["20%", "40%"]
    stand = Model.objects.get(name="Phone stand")
    assert stand.designer is not None and stand.shared_with_partners

    # Stock fits some variants and not others.
    def fits(sku: str) -> bool:
        meta = ModelVariant.objects.get(sku=sku).current_version.sliced_file.metadata
        slots = match_slots(materials=meta["filament_type"], colours=meta["filament_colour"])
        return all(slot.best is not None and slot.best.spool_codes for slot in slots)

    assert fits("KEY-S-ORANGE") and fits("SIGN-WHITE-ORANGE") and fits("CLIP-6-BLACK")
    assert not fits("SIGN-WHITE-YELLOW") and not fits("HOOK-BLACK")
    assert Product.objects.filter(kind="printed", variant__sku="KEY-S-ORANGE").exists()

    # Running it again changes nothing.
    def counts():
        rows = [Model, ModelImage, ModelVariant, VariantVersion, SlicedFile, SlicedFileThumbnail, Spool, Product]
        units = sum(ProductStock.objects.values_list("quantity", flat=True))
        return [table.objects.count() for table in rows] + [units]

    before = counts()
    call_command("demo", stdout=io.StringIO())
    assert counts() == before

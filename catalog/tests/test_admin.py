import pytest
from django.urls import reverse

from catalog import services
from catalog.models import SlicedFile, VariantVersion
from catalog.tests.factories import FakeInfo, VariantFactory, gcode_upload, metadata

pytestmark = pytest.mark.django_db


def upload(client, variant, file, note=""):
    url = reverse("admin:catalog_modelvariant_upload_file", args=[variant.pk])
    return client.post(url, {"file": file, "change_note": note})


def test_upload_page_and_files_become_versions_in_order(admin_client, fake_reader):
    variant = VariantFactory()
    page = admin_client.get(reverse("admin:catalog_modelvariant_upload", args=[variant.pk]))
    assert page.status_code == 200 and b'id="dropzone"' in page.content
    first = upload(admin_client, variant, gcode_upload(body=b"G28 ; a\n"), "first")
    second = upload(admin_client, variant, gcode_upload(body=b"G28 ; b\n"))
    assert (first.status_code, first.json()["version"]) == (201, 1)
    assert (second.status_code, second.json()["version"]) == (201, 2)
    assert second.json()["status"] == "done"
    assert VariantVersion.objects.get(variant=variant, number=1).change_note == "first"


def test_refused_upload_answers_with_the_reason(admin_client, fake_reader):
    variant = VariantFactory()
    response = upload(admin_client, variant, gcode_upload(name="virus.exe"))
    assert response.status_code == 422
    assert "not a file the catalog accepts" in response.json()["error"]
    assert not SlicedFile.objects.exists()
    response = admin_client.post(reverse("admin:catalog_modelvariant_upload_file", args=[variant.pk]), {})
    assert response.status_code == 400


def test_operators_cannot_upload(operator_client, fake_reader):
    variant = VariantFactory()
    assert upload(operator_client, variant, gcode_upload()).status_code == 403
    assert not VariantVersion.objects.exists()


def test_unknown_variant(admin_client):
    assert admin_client.get(reverse("admin:catalog_modelvariant_upload", args=[999999])).status_code == 404


def test_diff_shows_changed_settings(admin_client, fake_reader):
    variant = VariantFactory()
    fake_reader.info = FakeInfo(fields=metadata(), config={"layer_height": "0.2", "infill": "15%", "same": "x"})
    services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; a\n"))
    fake_reader.info = FakeInfo(fields=metadata(layer_height=0.28), config={"layer_height": "0.28", "same": "x",
                                                                           "ironing": "1"})
    services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; b\n"))
    url = reverse("admin:catalog_modelvariant_diff", args=[variant.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    config = {row.key: (row.before, row.after) for row in response.context["diff"]["config"]}
    assert config == {"layer_height": ("0.2", "0.28"), "infill": ("15%", None), "ironing": (None, "1")}
    assert [row.key for row in response.context["diff"]["metadata"]] == ["layer_height"]
    everything = admin_client.get(url + "?a=1&b=2&all=1").context["diff"]["config"]
    assert {row.key for row in everything} == {"layer_height", "infill", "ironing", "same"}
    assert admin_client.get(url + "?a=1&b=9").status_code == 404
    assert admin_client.get(url + "?a=x").status_code == 404


def test_sliced_file_page_shows_summary_and_config(admin_client, fake_reader):
    variant = VariantFactory()
    version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload())
    response = admin_client.get(reverse("admin:catalog_slicedfile_change", args=[version.sliced_file.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "MK4S" in html and "1 h 00 min" in html and "#FF8000" in html
    assert "data-key='layer_height'" in html


def test_version_page_and_model_versions_tab(admin_client, fake_reader):
    fake_reader.info = FakeInfo(fields=metadata(filament_type=["PLA", "PETG"], filament_colour=["#FF0000", "#00FF00"],
                                                filament_used_g=[3.5, 1.25]))
    variant = VariantFactory()
    version = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(), change_note="thinner")
    page = admin_client.get(reverse("admin:catalog_variantversion_change", args=[version.pk])).content.decode()
    assert "data-slot='1'" in page and "data-slot='2'" in page
    assert "3.5 g" in page and "1.25 g" in page and "#00FF00" in page
    assert "<img src=" in page  # the thumbnail
    model_page = admin_client.get(reverse("admin:catalog_model_change", args=[variant.model_id])).content.decode()
    assert f"{variant.sku} v1" in model_page and "thinner" in model_page


def test_variant_list_falls_back_to_the_variants_own_colour(admin_client):
    VariantFactory(colour="#123ABC")  # no sliced file yet, so no filament colours
    html = admin_client.get(reverse("admin:catalog_modelvariant_changelist")).content.decode()
    assert 'title="#123ABC"' in html

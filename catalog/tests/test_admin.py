import pytest
from django.urls import reverse

from catalog import selectors, services
from catalog.models import Category, Model, ModelVariant, SlicedFile, VariantVersion
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


def test_upload_page_offers_every_accepted_suffix(admin_client):
    page = admin_client.get(reverse("admin:catalog_modelvariant_upload", args=[VariantFactory().pk]))
    assert b'accept=".gcode.3mf,.3mf,.bgcode,.gcode,.ufp,.stl"' in page.content


def test_upload_page_says_the_limit_in_mib(admin_client, settings):
    settings.CATALOG_MAX_UPLOAD_BYTES = 200 << 20
    page = admin_client.get(reverse("admin:catalog_modelvariant_upload", args=[VariantFactory().pk]))
    assert b"Up to 200 MiB per file." in page.content


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


# --- Saves go through the catalog's services ---------------------------------------------


NO_VERSIONS = {"versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}  # the read-only versions inline


def found(query: str) -> set[str]:
    return {v.sku for v in selectors.variant_list(filters=selectors.VariantFilter(q=query))}


def model_form(model=None, *, variants=(), new_variants=(), **fields) -> dict:
    """What the model's admin page posts: its fields and the variants inline (existing rows first)."""
    data = {
        "name": model.name if model else "", "description": model.description if model else "",
        "licence": model.licence if model else "proprietary", "designer": "", "category": "",
        "tags": [tag.pk for tag in model.tags.all()] if model else [],
        "variants-TOTAL_FORMS": str(len(variants) + len(new_variants)), "variants-INITIAL_FORMS": str(len(variants)),
        "images-TOTAL_FORMS": "0", "images-INITIAL_FORMS": "0",
        **fields,
    }
    rows = [{"id": v.pk, "name": v.name, "sku": v.sku, "colour": v.colour, "material": v.material,
             "size": v.size} for v in variants] + [{"id": "", **row} for row in new_variants]
    for n, row in enumerate(rows):
        for key, value in row.items():
            data[f"variants-{n}-{key}"] = value
        if model is not None:
            data[f"variants-{n}-model"] = model.pk
    return data


def change_model(client, model, **kwargs):
    return client.post(reverse("admin:catalog_model_change", args=[model.pk]), model_form(model, **kwargs))


def test_a_variant_added_inline_is_found_by_search(admin_client):
    model = services.model_create(name="Desk organiser", tags=["office"])
    response = change_model(admin_client, model,
                            new_variants=[{"name": "Walnut", "sku": "DO-WAL", "colour": "#aa5500"}])
    assert response.status_code == 302, response.content
    variant = ModelVariant.objects.get(sku="DO-WAL")
    assert variant.colour == "#AA5500"  # the service's normalising applies too
    assert found("walnut") == found("organiser") == found("office") == {"DO-WAL"}


def test_a_model_added_with_variants_is_searchable_and_knows_its_author(admin_client, admin_user):
    data = model_form(name="Cable clip", new_variants=[{"name": "Small", "sku": "CC-S"}])
    response = admin_client.post(reverse("admin:catalog_model_add"), data)
    assert response.status_code == 302, response.content
    model = Model.objects.get(name="Cable clip")
    assert model.created_by == admin_user
    assert found("cable") == {"CC-S"}


def test_a_sku_differing_only_in_case_is_refused_with_a_form_error(admin_client):
    model = services.model_create(name="Desk organiser")
    services.variant_create(model=model, name="Oak", sku="ABC-1")
    response = change_model(admin_client, model, variants=list(model.variants.all()),
                            new_variants=[{"name": "Pine", "sku": "abc-1"}])
    assert response.status_code == 200
    assert "SKU abc-1 is already used." in response.content.decode()
    assert list(ModelVariant.objects.values_list("sku", flat=True)) == ["ABC-1"]

    page = admin_client.post(reverse("admin:catalog_modelvariant_add"),
                             {"model": model.pk, "name": "Pine", "sku": "Abc-1", **NO_VERSIONS})
    assert page.status_code == 200 and "SKU Abc-1 is already used." in page.content.decode()
    assert ModelVariant.objects.count() == 1


def test_two_new_rows_with_one_sku_in_two_cases_are_refused(admin_client):
    model = services.model_create(name="Desk organiser")
    response = change_model(admin_client, model, new_variants=[{"name": "Oak", "sku": "DO-1"},
                                                               {"name": "Pine", "sku": "do-1"}])
    assert response.status_code == 200 and "SKU do-1 is given twice." in response.content.decode()
    assert not ModelVariant.objects.exists()


def test_renaming_a_model_makes_its_variants_findable_by_the_new_name(admin_client):
    model = services.model_create(name="Desk organiser")
    services.variant_create(model=model, name="Oak", sku="DO-OAK")
    response = change_model(admin_client, model, variants=list(model.variants.all()), name="Pen holder")
    assert response.status_code == 302, response.content
    assert found("holder") == {"DO-OAK"}
    assert found("organiser") == set()


def test_a_variant_page_save_goes_through_the_service(admin_client):
    model = services.model_create(name="Desk organiser")
    variant = services.variant_create(model=model, name="Oak", sku="DO-OAK")
    response = admin_client.post(reverse("admin:catalog_modelvariant_change", args=[variant.pk]), {
        "model": model.pk, "name": "Smoked oak", "sku": "do-oak", "colour": "#112233", **NO_VERSIONS,
    })
    assert response.status_code == 302, response.content
    variant.refresh_from_db()
    assert (variant.sku, variant.name) == ("do-oak", "Smoked oak")  # its own SKU in another case is fine
    assert found("smoked") == {"do-oak"}
    added = admin_client.post(reverse("admin:catalog_modelvariant_add"),
                              {"model": model.pk, "name": "Ash", "sku": "DO-ASH", **NO_VERSIONS})
    assert added.status_code == 302, added.content
    assert found("ash") == {"DO-ASH"}


def test_renaming_a_tag_or_category_refreshes_search(admin_client):
    category = services.category_create(name="Office")
    model = services.model_create(name="Desk organiser", category=category, tags=["Wood"])
    services.variant_create(model=model, name="Oak", sku="DO-OAK")
    tag = model.tags.get()
    assert admin_client.post(reverse("admin:catalog_tag_change", args=[tag.pk]),
                             {"name": "Timber"}).status_code == 302
    assert admin_client.post(reverse("admin:catalog_category_change", args=[category.pk]),
                             {"name": "Workshop"}).status_code == 302
    assert found("timber") == found("workshop") == {"DO-OAK"}
    assert found("wood") == found("office") == set()
    assert admin_client.post(reverse("admin:catalog_tag_add"), {"name": "timber"}).status_code == 200  # case-blind
    assert admin_client.post(reverse("admin:catalog_category_add"), {"name": "Garden"}).status_code == 302
    assert Category.objects.filter(name="Garden").exists()


def test_images_inline_saves_through_the_service(admin_client):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    model = services.model_create(name="Desk organiser")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "#FF8000").save(buffer, "PNG")
    data = model_form(model, **{"images-TOTAL_FORMS": "1", "images-0-caption": " front ", "images-0-position": "2",
                                "images-0-image": SimpleUploadedFile("front.png", buffer.getvalue()),
                                "images-0-id": "", "images-0-model": model.pk})
    response = admin_client.post(reverse("admin:catalog_model_change", args=[model.pk]), data)
    assert response.status_code == 302, response.content
    image = model.images.get()
    assert (image.caption, image.position, image.width) == ("front", 2, 8)


# --- Making an older version current ------------------------------------------------------


def two_versions(fake_reader, variant=None):
    variant = variant or VariantFactory()
    fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=600))
    first = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; 1\n"))
    fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=1200))
    second = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; 2\n"))
    return variant, first, second


def test_an_older_version_is_made_current(admin_client, fake_reader):
    variant, first, _second = two_versions(fake_reader)
    url = reverse("admin:catalog_modelvariant_set_current", args=[variant.pk])
    page = admin_client.get(url + f"?version={first.pk}")
    assert page.status_code == 200 and 'data-version="1"' in page.content.decode()
    assert page.context["form"]["version"].value() == str(first.pk)
    assert admin_client.post(url, {"version": first.pk}).status_code == 302
    variant.refresh_from_db()
    assert variant.current_version == first and variant.estimated_time_s == 600


def test_a_version_of_another_variant_is_refused(admin_client, fake_reader):
    variant, _first, second = two_versions(fake_reader)
    _other, foreign, _ = two_versions(fake_reader)
    url = reverse("admin:catalog_modelvariant_set_current", args=[variant.pk])
    for bad in (foreign.pk, "x", ""):
        response = admin_client.post(url, {"version": bad})
        assert response.status_code == 200 and response.context["form"].errors
    variant.refresh_from_db()
    assert variant.current_version == second


def test_the_version_page_leads_to_making_it_current(admin_client, fake_reader):
    variant, first, _second = two_versions(fake_reader)
    response = admin_client.get(reverse("admin:catalog_variantversion_open_make_current", args=[first.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"/catalog/modelvariant/{variant.pk}/current-version/?version={first.pk}")
    note = admin_client.post(reverse("admin:catalog_variantversion_change", args=[first.pk]),
                             {"change_note": " the good one "})
    assert note.status_code == 302
    first.refresh_from_db()
    assert first.change_note == "the good one"


def test_operators_cannot_change_the_current_version(operator_client, fake_reader):
    client = operator_client
    variant, first, second = two_versions(fake_reader)
    url = reverse("admin:catalog_modelvariant_set_current", args=[variant.pk])
    assert client.post(url, {"version": first.pk}).status_code == 403
    variant.refresh_from_db()
    assert variant.current_version == second

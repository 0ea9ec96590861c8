from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog import services
from catalog.models import SlicedFile, VariantVersion
from catalog.tests.factories import FakeInfo, ModelFactory, VariantFactory, gcode_upload, metadata
from fablab.choices import ApiKeyScope
from fablab.tests.factories import make_api_key
from fablab.tests.helpers import ApiClient, assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(partner, other_partner, fake_reader):
    """Own, shared, foreign and lab-only models with one variant each, each with a version."""
    own = VariantFactory(model=ModelFactory(name="Own Vase", designer=partner), sku="OWN-1")
    shared = VariantFactory(model=ModelFactory(name="Shared Hook", shared_with_partners=True), sku="SHR-1")
    foreign = VariantFactory(model=ModelFactory(name="Foreign Gear", designer=other_partner), sku="FOR-1")
    lab = VariantFactory(model=ModelFactory(name="Lab Secret"), sku="LAB-1")
    for n, variant in enumerate([own, shared, foreign, lab]):
        fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=600 * (n + 1),
                                                    filament_type=["PLA" if n % 2 else "PETG"]))
        services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=f"G28 ; {n}\n".encode()))
    return {"own": own, "shared": shared, "foreign": foreign, "lab": lab}


def skus(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["sku"] for item in response.json()["items"]}


class TestVisibility:
    def test_partner_sees_own_and_shared_only(self, api, catalog):
        assert skus(api.get("/api/v1/catalog/variants")) == {"OWN-1", "SHR-1"}
        names = {m["name"] for m in api.get("/api/v1/catalog/models").json()["items"]}
        assert names == {"Own Vase", "Shared Hook"}

    @pytest.mark.parametrize("which", ["foreign", "lab"])
    def test_hidden_rows_are_not_found(self, api, catalog, which):
        variant = catalog[which]
        assert_problem(api.get(f"/api/v1/catalog/variants/{variant.pk}"), 404)
        assert_problem(api.get(f"/api/v1/catalog/models/{variant.model_id}"), 404)
        assert_problem(api.get(f"/api/v1/catalog/variants/{variant.pk}/versions/1/download"), 404)
        before = VariantVersion.objects.count()
        response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                             {"file": gcode_upload(body=b"G28 ; sneaky\n")})
        assert_problem(response, 404)
        assert VariantVersion.objects.count() == before

    def test_shared_models_are_read_only(self, api, catalog):
        response = api.post(f"/api/v1/catalog/variants/{catalog['shared'].pk}/versions",
                            {"file": gcode_upload(body=b"G28 ; mine now\n")})
        assert_problem(response, 403, detail_contains="only its designer")

    def test_search_never_reaches_hidden_rows(self, api, catalog):
        assert skus(api.get("/api/v1/catalog/variants?q=Foreign")) == set()
        assert skus(api.get("/api/v1/catalog/variants?q=Secret")) == set()


class TestReading:
    def test_variant_detail_has_metadata_and_versions(self, api, catalog):
        body = api.get(f"/api/v1/catalog/variants/{catalog['own'].pk}").json()
        assert body["current_version"] == 1
        assert body["model"]["name"] == "Own Vase"
        version = body["versions"][0]
        assert version["number"] == 1
        assert version["sliced_file"]["metadata"]["printer_model"] == "MK4S"
        assert version["sliced_file"]["status"] == "done"
        assert version["download_url"].endswith(f"/variants/{catalog['own'].pk}/versions/1/download")

    def test_download(self, api, catalog):
        response = api.get(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions/1/download")
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == b"G28 ; 0\n"
        assert 'attachment; filename="part.gcode"' in response["Content-Disposition"]
        assert_problem(api.get(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions/7/download"), 404)

    @pytest.mark.parametrize("query,expected", [
        ("material=PETG", {"OWN-1"}),
        ("material=pla", {"SHR-1"}),
        ("min_time_s=1000", {"SHR-1"}),
        ("max_time_s=600", {"OWN-1"}),
        ("printer_model=MK4S", {"OWN-1", "SHR-1"}),
        ("printer_model=XL", set()),
        ("layer_height=0.2&nozzle_diameter=0.4", {"OWN-1", "SHR-1"}),
        ("colour=%23ff8000", {"OWN-1", "SHR-1"}),
        ("colour=%23000000", set()),
    ])
    def test_filters(self, api, catalog, query, expected):
        assert skus(api.get(f"/api/v1/catalog/variants?{query}")) == expected

    def test_designer_and_tag_filters(self, api, catalog, partner):
        catalog["own"].model.tags.set(services.tags_get_or_create(names=["Kitchen"]))
        assert skus(api.get(f"/api/v1/catalog/variants?designer={partner.pk}")) == {"OWN-1"}
        assert skus(api.get("/api/v1/catalog/variants?tag=kitchen")) == {"OWN-1"}

    @pytest.mark.parametrize("query", ["colour=red", "min_time_s=-1", "nozzle_diameter=abc",
                                       "min_time_s=100&max_time_s=10"])
    def test_bad_filters_are_refused(self, api, catalog, query):
        assert_problem(api.get(f"/api/v1/catalog/variants?{query}"), 422)


class TestUploading:
    def test_upload_makes_the_next_version(self, api, catalog, fake_reader):
        fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=42))
        response = api.post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions",
                            {"file": gcode_upload(body=b"G28 ; v2\n"), "change_note": "thinner walls"})
        assert response.status_code == 201, response.content
        assert response.json()["number"] == 2
        assert response.json()["change_note"] == "thinner walls"
        assert api.get(f"/api/v1/catalog/variants/{catalog['own'].pk}").json()["estimated_time_s"] == 42

    def test_read_only_key_cannot_upload(self, partner, catalog):
        _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
        response = ApiClient(raw).post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions",
                                       {"file": gcode_upload(body=b"G28 ; ro\n")})
        assert_problem(response, 403)

    @pytest.mark.parametrize("upload,status,detail", [
        (SimpleUploadedFile("evil.exe", b"MZ\x90\x00"), 422, "not a file the catalog accepts"),
        (SimpleUploadedFile("empty.gcode", b""), 422, "is empty"),
    ])
    def test_refused_uploads(self, api, catalog, upload, status, detail):
        before = (SlicedFile.objects.count(), VariantVersion.objects.count())
        assert_problem(api.post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions", {"file": upload}),
                       status, detail_contains=detail)
        assert (SlicedFile.objects.count(), VariantVersion.objects.count()) == before

    def test_same_file_twice_is_a_conflict(self, api, catalog):
        response = api.post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions",
                            {"file": gcode_upload(body=b"G28 ; 0\n")})
        assert_problem(response, 409, detail_contains="identical to version 1")

    def test_missing_file_field(self, api, catalog):
        assert_problem(api.post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions", {}), 422)

    def test_the_same_bytes_from_two_partners_keep_each_their_name(self, api, partner, other_partner, fake_reader):
        """Storage is shared only within one owner: a rival's name, metadata and uploader never show."""
        body = b"G28 ; the same bytes\n"
        rival_variant = VariantFactory(model=ModelFactory(designer=other_partner))
        _key, raw = make_api_key(other_partner, scope=ApiKeyScope.WRITE)
        rival_api = ApiClient(raw)
        rival = rival_api.post(f"/api/v1/catalog/variants/{rival_variant.pk}/versions",
                               {"file": gcode_upload(name="rival.gcode", body=body)})
        assert rival.status_code == 201, rival.content
        own_variant = VariantFactory(model=ModelFactory(designer=partner))
        mine = api.post(f"/api/v1/catalog/variants/{own_variant.pk}/versions",
                        {"file": gcode_upload(name="mine.gcode", body=body)})
        assert mine.status_code == 201, mine.content
        assert mine.json()["sliced_file"]["original_name"] == "mine.gcode"
        assert rival.json()["sliced_file"]["sha256"] == mine.json()["sliced_file"]["sha256"]

        for client, variant, name in ((api, own_variant, "mine.gcode"), (rival_api, rival_variant, "rival.gcode")):
            shown = client.get(f"/api/v1/catalog/variants/{variant.pk}").json()
            assert shown["versions"][0]["sliced_file"]["original_name"] == name
            download = client.get(shown["versions"][0]["download_url"])
            assert download.status_code == 200
            assert f'filename="{name}"' in download["Content-Disposition"]
            assert b"".join(download.streaming_content) == body
        rows = SlicedFile.objects.filter(sha256=rival.json()["sliced_file"]["sha256"])
        assert set(rows.values_list("storage_owner", "original_name")) == {
            (f"org-{other_partner.pk}", "rival.gcode"), (f"org-{partner.pk}", "mine.gcode")}
        assert all(row.file.name.startswith(f"catalog/{row.storage_owner}/") for row in rows)
        assert fake_reader.calls == 2  # each owner's copy is read for that owner

    def test_the_same_partner_uploading_the_same_bytes_again_shares_the_stored_file(self, api, partner):
        body = b"G28 ; once\n"
        first, second = (VariantFactory(model=ModelFactory(designer=partner)) for _ in range(2))
        for variant, name in ((first, "a.gcode"), (second, "b.gcode")):
            response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                                {"file": gcode_upload(name=name, body=body)})
            assert response.status_code == 201, response.content
        assert SlicedFile.objects.count() == 1
        assert VariantVersion.objects.get(variant=second).sliced_file.original_name == "a.gcode"


@pytest.mark.parametrize("body", [
    b"binary stl".ljust(80, b" ") + b"\x00\x00\x00\x00",
    b"solid empty\nendsolid empty\n",
], ids=["binary", "ascii"])
def test_an_stl_without_triangles_is_refused_and_nothing_is_stored(api, partner, body):
    """The real reader (no substitute): an STL with nothing to print never becomes a version."""
    variant = VariantFactory(model=ModelFactory(designer=partner))
    response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                        {"file": SimpleUploadedFile("empty.stl", body)})
    assert_problem(response, 422, detail_contains="empty.stl contains no readable triangles")
    assert not SlicedFile.objects.exists() and not VariantVersion.objects.exists()
    root = Path(default_storage.location)
    assert not root.exists() or list(root.rglob("*")) == []


def test_a_gcode_that_is_not_utf8_stores_no_string_as_a_number_and_counts_only_stored_previews(api, partner):
    """The real reader: a byte that is not UTF-8 in a number and in the one preview's data."""
    from catalog.tests.test_slicer_hostile import prusa_gcode

    data = prusa_gcode().encode().replace(b"\n; filament used [g] = 3.70", b"\n; filament used [g] = 1.\xff23")
    start = data.index(b"; thumbnail begin")
    line = data.index(b"\n", start) + 1
    data = data[:line + 4] + b"\xff" + data[line + 4:]  # inside the base64 of the preview
    variant = VariantFactory(model=ModelFactory(designer=partner))
    response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                        {"file": SimpleUploadedFile("latin.gcode", data)})
    assert response.status_code == 201, response.content
    served = response.json()["sliced_file"]
    assert served["metadata"]["filament_used_g"] is None
    assert served["metadata"]["filament_used_g_total"] == 3.7
    assert served["thumbnail_count"] == 0 == served["metadata"]["thumbnail_count"]
    assert served["plates"][0]["fields"]["thumbnail_count"] == 0
    assert any("damaged and was skipped" in warning for warning in served["warnings"])
    variant.refresh_from_db()
    assert variant.filament_used_g == Decimal("3.70")


class TestCurrentVersion:
    def test_version_objects_carry_their_id(self, api, catalog):
        body = api.get(f"/api/v1/catalog/variants/{catalog['own'].pk}").json()
        assert body["versions"][0]["id"] == VariantVersion.objects.get(variant=catalog["own"], number=1).pk

    def test_the_designer_makes_an_older_version_current(self, api, catalog, fake_reader):
        own = catalog["own"]
        fake_reader.info = FakeInfo(fields=metadata(estimated_time_s=42))
        services.variant_upload_sliced_file(variant=own, upload=gcode_upload(body=b"G28 ; v2\n"))
        response = api.post(f"/api/v1/catalog/variants/{own.pk}/versions/1/make-current")
        assert response.status_code == 200, response.content
        assert response.json()["current_version"] == 1
        assert response.json()["estimated_time_s"] == 600
        own.refresh_from_db()
        assert own.current_version.number == 1

    @pytest.mark.parametrize("which,number,status,detail", [
        ("shared", 1, 403, "only its designer"),
        ("foreign", 1, 404, "No variant"),
        ("lab", 1, 404, "No variant"),
        ("own", 7, 404, "has no version 7"),
    ])
    def test_refusals_change_nothing(self, api, catalog, fake_reader, which, number, status, detail):
        variant = catalog[which]
        before = services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; v2\n")).pk
        response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions/{number}/make-current")
        assert_problem(response, status, detail_contains=detail)
        variant.refresh_from_db()
        assert variant.current_version_id == before

    def test_a_version_of_another_variant_cannot_be_reached(self, api, catalog, fake_reader):
        """Numbers count per variant: the second version of another variant is not this variant's."""
        services.variant_upload_sliced_file(variant=catalog["foreign"], upload=gcode_upload(body=b"G28 ; f2\n"))
        own = catalog["own"]
        assert_problem(api.post(f"/api/v1/catalog/variants/{own.pk}/versions/2/make-current"), 404)
        own.refresh_from_db()
        assert own.current_version.number == 1

    def test_read_only_key_cannot_choose(self, partner, catalog):
        _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
        response = ApiClient(raw).post(f"/api/v1/catalog/variants/{catalog['own'].pk}/versions/1/make-current")
        assert_problem(response, 403)

"""Every real corpus file, uploaded through the API, keeps exactly what the reader found.

test_slicer_corpus.py checks the reader itself in detail; this checks the whole path a
partner uses: upload, format check by content, storage, thumbnails, metadata in the
database, and the values served back by the API.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import SlicedFile
from catalog.slicer.scoring import values_match
from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.tests.helpers import corpus_cases, corpus_path, slicer_expected

pytestmark = pytest.mark.django_db

COMPARED = ("slicer", "slicer_version", "estimated_time_s", "filament_used_g", "filament_used_g_total",
            "filament_used_mm", "filament_type", "filament_colour", "layer_height", "first_layer_height",
            "nozzle_diameter", "nozzle_temperature", "nozzle_temperature_initial_layer", "bed_temperature",
            "bed_temperature_initial_layer", "printer_model", "object_height", "layer_count")


@pytest.mark.parametrize("name", corpus_cases(slicer_expected))
def test_corpus_file_through_the_api(name, api, partner):
    expected = slicer_expected()[name]
    variant = VariantFactory(model=ModelFactory(designer=partner))
    body = corpus_path("slicer", name).read_bytes()
    response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                        {"file": SimpleUploadedFile(name, body)})
    assert response.status_code == 201, response.content
    served = response.json()["sliced_file"]
    assert served["format"] == expected["format"]
    assert served["status"] == "done"
    if "sliced" in expected:
        assert served["sliced"] is expected["sliced"]
    wrong = {
        field: (expected[field], served["metadata"].get(field))
        for field in COMPARED
        if expected.get(field) is not None and not values_match(expected[field], served["metadata"].get(field),
                                                                  field=field)
    }
    assert wrong == {}, f"{name}: expected vs served {wrong}"

    sliced = SlicedFile.objects.get(sha256=served["sha256"])
    assert sliced.size_bytes == len(body) == expected.get("size_bytes", len(body))
    if expected.get("sha256"):
        assert sliced.sha256 == expected["sha256"]
    stored = list(sliced.thumbnails.all())
    if expected.get("thumbnail_count"):
        assert len(stored) >= 1
    for thumbnail in stored:
        assert thumbnail.image.read(8) == b"\x89PNG\r\n\x1a\n"
    detail = api.get(f"/api/v1/catalog/variants/{variant.pk}").json()
    assert detail["current_version"] == 1
    download = api.get(response.json()["download_url"])
    assert b"".join(download.streaming_content) == body


def test_large_files_are_read_by_the_background_task(api, partner, settings, django_capture_on_commit_callbacks,
                                                     monkeypatch):
    settings.CATALOG_SYNC_READ_BYTES = 0
    monkeypatch.setattr("django_q.conf.Conf.SYNC", True)  # run the queued task in this process
    name = "prusaslicer-2.8.1_mk4s_minicube.bgcode"
    variant = VariantFactory(model=ModelFactory(designer=partner))
    body = corpus_path("slicer", name).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions",
                            {"file": SimpleUploadedFile(name, body)})
    assert response.json()["sliced_file"]["status"] == "pending"
    detail = api.get(f"/api/v1/catalog/variants/{variant.pk}").json()
    assert detail["versions"][0]["sliced_file"]["status"] == "done"
    assert detail["versions"][0]["sliced_file"]["metadata"]["printer_model"] == "MK4S"
    assert detail["printer_model"] == "MK4S"


@pytest.mark.parametrize(("real", "named", "message"), [
    ("bambustudio-02.04.00.70_a1mini_cube.gcode.3mf", "cube.ufp", "cube.ufp has the extension .ufp but contains 3MF"),
    ("cura-4.5.0_schieberdeckel.ufp", "deckel.3mf", "deckel.3mf has the extension .3mf but contains Cura UFP"),
])
def test_a_package_named_as_the_other_kind_is_refused(api, partner, real, named, message):
    variant = VariantFactory(model=ModelFactory(designer=partner))
    body = corpus_path("slicer", real).read_bytes()
    response = api.post(f"/api/v1/catalog/variants/{variant.pk}/versions", {"file": SimpleUploadedFile(named, body)})
    assert response.status_code == 422, response.content
    assert message in response.json()["detail"]
    assert not SlicedFile.objects.exists()

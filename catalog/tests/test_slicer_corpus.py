"""Every real file of the slicer corpus against its ground truth (corpus/slicer/expected.json).

The corpus is found through settings.FABLAB_CORPUS (env FABLAB_CORPUS). When it is
missing these tests fail with a message saying so; they never skip.
"""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.slicer import SCHEMA_FIELDS, read_sliced_file
from catalog.slicer.scoring import values_match
from fablab.tests.helpers import corpus_cases, corpus_path, slicer_expected

FILES = corpus_cases(slicer_expected)
NOT_CORPUS_FILES = {"MANIFEST.md", "expected.json"}

# Ground-truth values that the file itself contradicts. Each names the value expected.json states,
# the value the file shows and why; the test asserts the corrected value exactly AND that
# expected.json still says the stated one, so an entry fails (and must go) once the corpus is fixed.
ERRATA = {
    ("simplify3d-4.1.2_ormerod2.gcode", "settings_summary_key_count"): (
        187, 190,
        "the Settings Summary has 190 ';   key,value' settings (printerModelsOverride is written without a "
        "comma because it is empty); 187 leaves out use5D, includeM10123 and printerModelsOverride, i.e. it "
        "counted only names made of letters",
    ),
    ("simplify3d-4.0.1_taz6dual_benchy-2color.gcode", "settings_summary_key_count"): (
        190, 192,
        "the Settings Summary has 192 ';   key,value' settings; 190 leaves out use5D and includeM10123 "
        "(names with digits)",
    ),
}


def _labels(thumbnails) -> list[str]:
    return [f"{t.width}x{t.height} {t.format}" for t in thumbnails]


def test_corpus_is_present_and_complete():
    """The folder and its ground truth list the same files: none missing, none without ground truth."""
    expected, folder = slicer_expected(), corpus_path("slicer")
    missing = [name for name in expected if not (folder / name).is_file()]
    assert not missing, f"files listed in expected.json but absent from {folder}: {missing}"
    present = {path.name for path in folder.iterdir() if path.is_file()} - NOT_CORPUS_FILES
    unlisted = sorted(present - set(expected))
    assert not unlisted, f"files in {folder} without ground truth in expected.json: {unlisted}"
    assert len(expected) == len(present) > 0


def test_errata_name_real_ground_truth_values():
    """An erratum stays only while expected.json still states the value it corrects."""
    expected = slicer_expected()
    for (name, key), (stated, _corrected, _why) in ERRATA.items():
        assert (expected[name].get("extra") or {}).get(key) == stated, (
            f"{name}: expected.json no longer states {key} = {stated}; remove the erratum")


@pytest.mark.parametrize("file_name", FILES)
def test_corpus_file_matches_ground_truth(file_name):
    expected = slicer_expected()[file_name]
    info = read_sliced_file(corpus_path("slicer", file_name))

    assert info.format == expected["format"]
    assert info.sliced is expected.get("sliced", True)
    assert set(info.fields) == set(SCHEMA_FIELDS)
    wrong = {}
    for key in SCHEMA_FIELDS:
        if key not in expected:
            continue
        if not values_match(expected[key], info.fields[key], field=key):
            wrong[key] = {"expected": expected[key], "got": info.fields[key]}
    assert not wrong, f"{file_name}: {wrong}"

    for key, value in (expected.get("extra") or {}).items():
        got = info.extra.get(key)
        if (file_name, key) in ERRATA:
            stated, value, why = ERRATA[(file_name, key)]
            assert got == value, f"{file_name}: extra[{key!r}] = {got!r}, the file shows {value} ({why})"
            continue
        assert values_match(value, got, field=key), f"{file_name}: extra[{key!r}] = {got!r}"
    if info.format in ("3mf", "ufp"):
        assert info.extra["archive_images"] == expected["archive_images"]
        assert info.extra["archive_gcode_entries"] == expected["archive_gcode_entries"]
        if "slice_info_client_version" in expected:
            assert info.extra["slice_info_client_version"] == expected["slice_info_client_version"]
        if expected.get("gcode_thumbnails") is not None:
            plate_one = [t for t in info.thumbnails if t.role == "gcode" and t.plate_index == 1]
            assert _labels(plate_one) == expected["gcode_thumbnails"]
        if info.format == "3mf":
            assert len(info.plates) == len(expected.get("plates") or [])
        else:  # a UFP package holds one G-code: one print job
            assert len(info.plates) == 1
        assert all("pick_" not in t.source for t in info.thumbnails)
    else:
        embedded = _labels(info.thumbnails) + info.extra.get("skipped_thumbnails", [])
        assert sorted(embedded) == sorted(expected["thumbnails"])
        if info.sliced:
            assert len(info.plates) == 1

    json.dumps(info.to_json())  # serialisable: no bytes, no sets
    for thumbnail in info.thumbnails:
        assert thumbnail.png().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("gcode_name", "threemf_name"),
    [
        ("orcaslicer-2.4.0a_ad5mpro_benchy.gcode", "orcaslicer-2.4.0a_ad5mpro_benchy.gcode.3mf"),
        ("orca-flashforge-1.3.0_ad5mpro.gcode", "orca-flashforge-1.3.0_ad5mpro.gcode.3mf"),
        ("prusaslicer-2.8.1_mk4s_minicube_from-bgcode.gcode", "prusaslicer-2.8.1_mk4s_minicube.bgcode"),
    ],
)
def test_the_same_slice_reads_the_same_in_both_containers(gcode_name, threemf_name):
    one = read_sliced_file(corpus_path("slicer", gcode_name)).fields
    other = read_sliced_file(corpus_path("slicer", threemf_name)).fields
    for key in SCHEMA_FIELDS:
        if key in ("plates",):
            continue
        assert values_match(one[key], other[key], field=key), key


def test_file_objects_read_like_paths():
    for name in ("prusaslicer-2.9.4_mk4ismmu3_shapebox.bgcode", "bambustudio-02.04.00.70_x1c_2plates.gcode.3mf",
                 "cura-4.10.0_voron_reprap_crlf.gcode"):
        data = corpus_path("slicer", name).read_bytes()
        by_path = read_sliced_file(corpus_path("slicer", name)).to_json()
        assert read_sliced_file(io.BytesIO(data), name=name).to_json() == by_path
        upload = SimpleUploadedFile(name, data)
        assert read_sliced_file(upload, name=name).to_json() == by_path
        assert upload.tell() == 0


def test_two_plates_are_two_jobs():
    info = read_sliced_file(corpus_path("slicer", "bambustudio-02.04.00.70_x1c_2plates.gcode.3mf"))
    assert [p.index for p in info.plates] == [1, 2]
    assert [p.gcode_name for p in info.plates] == ["Metadata/plate_1.gcode", "Metadata/plate_2.gcode"]
    assert [p.printer_model_id for p in info.plates] == ["BL-P001", "BL-P001"]
    assert info.plates[1].fields["estimated_time_s"] == 1094
    assert info.plates[1].fields["filament_used_g_total"] == 3.91
    assert info.plates[1].fields["filament_used_mm"] == [1290.88]
    plate_two_images = [info.thumbnails[i] for i in info.plates[1].thumbnail_indexes]
    assert {t.role for t in plate_two_images} == {"plate", "small", "no_light", "top"}


def test_disagreeing_sources_are_reported():
    """Orca 2.0.0 A1 mini: G-code footer grams differ from slice_info used_g (see threemf docstring)."""
    info = read_sliced_file(corpus_path("slicer", "orcaslicer-2.0.0_bambu-a1mini_3color.gcode.3mf"))
    assert info.fields["filament_used_g"] == [0.02, 0.13, 0.05]
    assert info.fields["filament_used_g_total"] == 0.56
    assert info.extra["slice_info_filament_used_g"] == [0.22, 0.18, 0.01]
    assert info.extra["gcode_filament_used_g"] == [0.02, 0.13, 0.05]
    assert any("slice_info.config" in w and "G-code" in w for w in info.warnings)


def test_files_without_disagreement_have_no_warning():
    for name in ("bambustudio-02.04.00.70_a1mini_cube.gcode.3mf", "orca-flashforge-1.4.2_ad5x_pla-silk.gcode.3mf",
                 "prusaslicer-2.8.1_mk4is_retainer.gcode", "prusaslicer-2.6.0_mini_minicube.bgcode"):
        assert read_sliced_file(corpus_path("slicer", name)).warnings == [], name


def test_unsliced_projects_say_not_sliced():
    bambu = read_sliced_file(corpus_path("slicer", "bambustudio-02.04.00.70_x1c_2plates_UNSLICED.3mf"))
    assert bambu.sliced is False and bambu.plates == []
    assert bambu.extra["project_slicer"] == "BambuStudio"
    assert len(bambu.config) == 501
    assert {t.role for t in bambu.thumbnails} == {"plate", "small", "no_light", "top"}
    prusa = read_sliced_file(corpus_path("slicer", "prusaslicer-2.9.4_shapebox_project_UNSLICED.3mf"))
    assert prusa.sliced is False
    assert prusa.extra["project_slicer_version"] == "2.9.4"
    assert prusa.config["printer_model"] == "MK4ISMMU3"
    assert [t.role for t in prusa.thumbnails] == ["thumbnail"]

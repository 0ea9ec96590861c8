"""The test corpus is found one way, and says clearly what to do when it is missing."""

import pytest

from fablab.tests.helpers import CORPUS_MISSING, corpus_cases, corpus_json, corpus_path, slicer_expected


def test_corpus_path_finds_files_and_folders_under_fablab_corpus(settings, tmp_path):
    (tmp_path / "slicer").mkdir()
    (tmp_path / "slicer" / "expected.json").write_text('{"files": {"cube.gcode": {"format": "gcode"}}}')
    settings.FABLAB_CORPUS = tmp_path
    assert corpus_path() == tmp_path
    assert corpus_path("slicer") == tmp_path / "slicer"
    assert corpus_json("slicer", "expected.json") == {"files": {"cube.gcode": {"format": "gcode"}}}
    assert slicer_expected() == {"cube.gcode": {"format": "gcode"}}


def test_a_missing_corpus_fails_naming_fablab_corpus(settings, tmp_path):
    settings.FABLAB_CORPUS = tmp_path / "nowhere"
    with pytest.raises(pytest.fail.Exception, match="The test corpus is missing: .*nowhere is not a folder. "
                                                    "Set FABLAB_CORPUS"):
        corpus_path("slicer", "cube.gcode")


def test_a_missing_file_fails_naming_the_file_and_fablab_corpus(settings, tmp_path):
    settings.FABLAB_CORPUS = tmp_path
    with pytest.raises(pytest.fail.Exception, match=r"has no slicer/cube.gcode: .* Is FABLAB_CORPUS \("):
        corpus_path("slicer", "cube.gcode")


def test_a_broken_json_file_fails_clearly(settings, tmp_path):
    (tmp_path / "broken.json").write_text("{")
    settings.FABLAB_CORPUS = tmp_path
    with pytest.raises(pytest.fail.Exception, match="broken.json is not valid JSON"):
        corpus_json("broken.json")


def test_parameters_read_at_collection_stand_in_for_a_missing_corpus(settings, tmp_path):
    settings.FABLAB_CORPUS = tmp_path
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "a.json").write_text("{}")
    assert corpus_cases(lambda: (path.name for path in corpus_path().glob("*.json"))) == ["a.json", "b.json"]
    settings.FABLAB_CORPUS = tmp_path / "nowhere"
    assert corpus_cases(slicer_expected) == [CORPUS_MISSING]

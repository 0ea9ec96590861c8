"""manage.py inspect_sliced_file: JSON Lines per file, errors per file, exit status."""

import io
import json
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from catalog.slicer import SCHEMA_FIELDS
from fablab.tests.helpers import corpus_path

REPO = Path(__file__).resolve().parents[2]
GOOD = ["prusaslicer-2.9.4_mk4ismmu3_shapebox.bgcode", "bambustudio-02.04.00.70_x1c_2plates.gcode.3mf",
        "cura-4.10.0_voron_reprap_crlf.gcode"]


def _corpus(name: str) -> str:
    return str(corpus_path("slicer", name))


def _run(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("inspect_sliced_file", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_json_lines_for_several_files_with_a_broken_one(tmp_path):
    broken = tmp_path / "broken.gcode"
    broken.write_bytes(bytes(range(256)) * 40)
    paths = [_corpus(GOOD[0]), str(broken), _corpus(GOOD[1]), _corpus(GOOD[2])]
    code, output = _run(*paths, "--json")
    lines = [json.loads(line) for line in output.splitlines()]
    assert code == 1
    assert [line["path"] for line in lines] == paths
    assert lines[1] == {"path": str(broken), "error": lines[1]["error"]}
    assert "broken.gcode is not G-code" in lines[1]["error"]
    for line in (lines[0], lines[2], lines[3]):
        assert {"path", "format", "sliced", *SCHEMA_FIELDS} <= set(line)
        assert "thumbnails" in line and "plate_count" in line
    assert lines[0]["format"] == "bgcode" and lines[0]["estimated_time_s"] == 1198
    assert lines[2]["format"] == "3mf" and lines[2]["plate_count"] == 2
    assert lines[3]["slicer"] == "Cura" and lines[3]["filament_type"] is None


def test_exit_status_zero_when_every_file_reads():
    code, output = _run(*(_corpus(name) for name in GOOD), "--json")
    assert code == 0
    assert len(output.splitlines()) == 3


def test_human_summary(tmp_path):
    empty = tmp_path / "empty.3mf"
    empty.write_bytes(b"")
    code, output = _run(_corpus(GOOD[0]), str(empty))
    assert code == 1
    assert "print time: 19m 58s" in output
    assert "thumbnails: 16x16 QOI, 313x173 QOI, 480x240 QOI, 380x285 PNG" in output
    assert "error: empty.3mf is empty" in output


def test_missing_file_is_an_error_line(tmp_path):
    code, output = _run(str(tmp_path / "nope.gcode"), "--json")
    assert code == 1
    assert "cannot be opened" in json.loads(output)["error"]


def test_real_process_exit_code(tmp_path):
    broken = tmp_path / "x.3mf"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    command = [sys.executable, "manage.py", "inspect_sliced_file", "--json", _corpus(GOOD[2]), str(broken)]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    first, second = (json.loads(line) for line in run.stdout.splitlines())
    assert first["slicer"] == "Cura"
    assert second["path"] == str(broken) and "damaged" in second["error"]


def test_a_cura_package_and_a_simplify3d_file():
    code, output = _run(_corpus("cura-4.5.0_schieberdeckel.ufp"), _corpus("simplify3d-4.1.2_ormerod2.gcode"), "--json")
    ufp, s3d = (json.loads(line) for line in output.splitlines())
    assert code == 0
    assert (ufp["format"], ufp["slicer"], ufp["plate_count"], ufp["layer_count"]) == ("ufp", "Cura", 1, 41)
    assert [(t["width"], t["height"], t["format"], t["role"]) for t in ufp["thumbnails"]] == [
        (300, 300, "PNG", "thumbnail")]
    assert (s3d["slicer"], s3d["printer_model"], s3d["nozzle_temperature"]) == ("Simplify3D", "RepRapPro Ormerod 2",
                                                                               [220, 0])

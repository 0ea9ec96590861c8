"""The simulators' file reader: a print's time and layers as the file states them, like a printer's firmware.

The real Bambu Studio, OrcaSlicer and PrusaSlicer files of the corpus give the time and layer count of
their ground truth (`expected.json`); the sample files the demo uses are checked in
`tests/test_demo_printers.py` (printers may not import the catalog that makes them).
"""

import io
import re
import struct
import zipfile
import zlib

import pytest

from fablab.tests.helpers import corpus_path, slicer_expected
from printers.simulators.printfile import (
    PrintFileError,
    PrintPlan,
    PrintRun,
    minutes,
    parse_duration,
    plate_from_param,
    read_print_file,
)
from printers.simulators.storage import builtin_gcode, builtin_print_file, files_in_folder, folder_name

# Files of the printers the app drives (Bambu Lab, Prusa), in the formats their firmware prints.
PRINTER_FILES = [
    "bambustudio-02.04.00.70_a1mini_cube.gcode.3mf",
    "bambustudio-02.04.00.70_x1c_2plates.gcode.3mf",
    "bambustudio-02.05.00.66_p1s_slot3-petgcf.gcode.3mf",
    "orcaslicer-2.0.0_bambu-a1mini_3color.gcode.3mf",
    "prusaslicer-2.8.1_mk4s_minicube.bgcode",
    "prusaslicer-2.8.1_mk4s_minicube_from-bgcode.gcode",
    "prusaslicer-2.6.0_mini_minicube.bgcode",
    "prusaslicer-2.9.4_mk4ismmu3_shapebox.bgcode",
    "prusaslicer-2.5.0_mk3smmu2s_m73.gcode",
    "prusaslicer-2.9.1_coreone_testgeometry.gcode",
]


def layer_markers(text: str) -> int:
    return len(re.findall(r"^(?:;LAYER_CHANGE|; CHANGE_LAYER)\s*$", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", PRINTER_FILES)
def test_time_and_layers_of_real_files_are_what_the_files_state(name):
    expected = slicer_expected()[name]
    data = corpus_path("slicer", name).read_bytes()
    plan = read_print_file(name, data)
    assert round(plan.total_seconds) == expected["estimated_time_s"]
    if expected.get("layer_count"):
        assert plan.layer_count == expected["layer_count"]
    if name.endswith(".gcode"):
        assert plan.layer_count == layer_markers(data.decode("utf-8", errors="replace"))
    assert list(plan.layer_starts) == sorted(plan.layer_starts)
    assert all(0 <= start < plan.total_seconds for start in plan.layer_starts)
    assert plan.at(plan.total_seconds).percent == 100 and plan.at(plan.total_seconds).layer == plan.layer_count


def test_a_bgcode_compressed_with_heatshrink_is_read_from_its_metadata():
    """PrusaSlicer's default binary G-code (heatshrink + MeatPack): the metadata's time, max_layer_z / layer_height
    layers — the same as the G-code of the same print."""
    binary = read_print_file("minicube.bgcode", corpus_path("slicer", "prusaslicer-2.8.1_mk4s_minicube.bgcode")
                             .read_bytes())
    ascii_twin = read_print_file("minicube.gcode", corpus_path(
        "slicer", "prusaslicer-2.8.1_mk4s_minicube_from-bgcode.gcode").read_bytes())
    assert binary.source == "metadata" and ascii_twin.source == "gcode"
    assert (binary.total_seconds, binary.layer_count) == (ascii_twin.total_seconds, ascii_twin.layer_count) == (221, 31)


def test_progress_and_time_left_are_the_files_m73_lines():
    data = corpus_path("slicer", "prusaslicer-2.9.1_coreone_testgeometry.gcode").read_bytes()
    plan = read_print_file("testgeometry.gcode", data)
    lines = re.findall(r"^M73 P(\d+) R(\d+)", data.decode(), flags=re.MULTILINE)
    assert [(int(m.percent), int(m.remaining_minutes)) for m in plan.marks] == [(int(p), int(r)) for p, r in lines]
    halfway = plan.at(plan.total_seconds / 2)
    mark = next(m for m in reversed(plan.marks) if m.seconds <= plan.total_seconds / 2)
    assert (halfway.percent, halfway.remaining_seconds) == (mark.percent, mark.remaining_minutes * 60)
    assert 0 < halfway.layer < plan.layer_count


def test_a_3mf_prints_the_plate_it_is_told():
    data = corpus_path("slicer", "bambustudio-02.04.00.70_x1c_2plates.gcode.3mf").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        second = archive.read("Metadata/plate_2.gcode").decode()
    stated = re.search(r"total layer number: (\d+)", second).group(1)
    plan = read_print_file("two.gcode.3mf", data, plate=plate_from_param("Metadata/plate_2.gcode"))
    assert plan.layer_count == int(stated)
    with pytest.raises(PrintFileError, match="no plate 3"):
        read_print_file("two.gcode.3mf", data, plate=3)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.gcode", b"", "empty"),
    ("zip.gcode.3mf", b"not a zip", "not a ZIP"),
    ("binary.gcode", b"\x00\x01\x02garbage" * 10, "binary data"),
    ("short.bgcode", b"GCDE\x01\x00\x00\x00\x01\x00" + struct.pack("<HHI", 1, 0, 100), "runs past the end"),
    ("cut.bgcode", b"GCDE\x01\x00\x00\x00\x01\x00\x01", "cut off"),
    ("type.bgcode", b"GCDE\x01\x00\x00\x00\x00\x00" + struct.pack("<HHIH", 9, 0, 0, 0), "unknown block type"),
])
def test_files_a_printer_cannot_print_are_refused_with_the_reason(name, data, reason):
    with pytest.raises(PrintFileError, match=reason):
        read_print_file(name, data)


def test_an_unsliced_3mf_is_refused():
    data = corpus_path("slicer", "bambustudio-02.04.00.70_x1c_2plates_UNSLICED.3mf").read_bytes()
    with pytest.raises(PrintFileError, match="not sliced"):
        read_print_file("project.3mf", data)


def test_a_bgcode_of_stored_and_deflated_gcode_blocks_is_read_from_its_gcode():
    gcode = builtin_gcode(layers=12, seconds=480)
    encoding = struct.pack("<H", 0)

    def block(kind: int, payload: bytes, *, deflate: bool) -> bytes:
        packed = zlib.compress(payload) if deflate else payload
        head = struct.pack("<HHII", kind, 1, len(payload), len(packed)) if deflate else \
            struct.pack("<HHI", kind, 0, len(payload))
        return head + encoding + packed + struct.pack("<I", zlib.crc32(packed))

    middle = gcode.index(b";LAYER_CHANGE", len(gcode) // 2)
    data = (b"GCDE" + struct.pack("<IH", 1, 1) + block(3, b"layer_height=0.2\n", deflate=False)
            + block(1, gcode[:middle], deflate=True) + block(1, gcode[middle:], deflate=False))
    plan = read_print_file("tube.bgcode", data)
    assert (plan.source, plan.total_seconds, plan.layer_count) == ("gcode", 480, 12)


def test_durations_as_slicers_write_them():
    assert parse_duration("1d 0h 2m 3s") == 86523 and parse_duration("18m 15s") == 1095
    assert parse_duration("40s") == 40 and parse_duration("soon") is None and parse_duration("") is None
    assert minutes(0) == 0 and minutes(1) == 1 and minutes(60) == 1 and minutes(61) == 2


# --- a job walking its file ------------------------------------------------------------------------


def test_a_run_reaches_the_layer_to_fail_at_reports_it_then_fails():
    plan = read_print_file(*builtin_print_file("gcode", layers=10, seconds=1000))
    run = PrintRun(plan, fail_at_layer=4)
    seen = []
    outcome = ""
    while not outcome:
        outcome = run.advance(30)
        seen.append(run.progress().layer)
    assert outcome == "failed" and seen[-2:] == [4, 4] and max(seen) == 4
    assert run.position == pytest.approx(plan.layer_start(4))
    assert run.advance(30) == ""  # ended once


def test_a_run_cancelled_at_a_layer_it_already_passed_stops_where_it_is():
    plan = read_print_file(*builtin_print_file("gcode", layers=10, seconds=1000))
    run = PrintRun(plan)
    run.advance(550)
    assert run.progress().layer == 6
    run.stop_at(2, "cancelled")
    assert run.advance(10) == "" and run.progress().layer == 6
    assert run.advance(10) == "cancelled"


def test_a_stop_layer_beyond_the_file_lets_it_finish():
    plan = PrintPlan.uniform(100, 5)
    run = PrintRun(plan, cancel_at_layer=6)
    assert run.advance(99) == "" and run.advance(1) == "finished"
    with pytest.raises(ValueError, match="from 1"):
        run.stop_at(0, "failed")


def test_the_simulators_own_files_and_folders_per_model(tmp_path):
    (tmp_path / "A1").mkdir()
    (tmp_path / "A1" / "cube.gcode.3mf").write_bytes(builtin_print_file("3mf")[1])
    (tmp_path / "A1" / "notes.txt").write_text("not a print file")
    (tmp_path / "tube.gcode").write_bytes(builtin_gcode())
    assert folder_name("Core One") == "COREONE"
    assert list(files_in_folder(tmp_path, "A1", (".gcode.3mf",))) == ["cube.gcode.3mf"]
    assert list(files_in_folder(tmp_path, "Core One", (".gcode", ".bgcode"))) == ["tube.gcode"]
    for kind in ("gcode", "3mf"):
        name, data = builtin_print_file(kind, layers=8, seconds=240)
        plan = read_print_file(name, data)
        assert (plan.total_seconds, plan.layer_count, plan.nozzle_c, plan.bed_c) == (240, 8, 215, 60)

"""The sample files the project makes: read back by the project's readers, and true to their own moves.

Every figure a file states is compared with the same figure recomputed here from the
file's G-code, by a small interpreter written for these tests: filament per slot is
the sum of E (relative or absolute extrusion, G92, tool changes), grams that length
times the cross-section of 1.75 mm filament times the density the file states, time
the sum of each move's length over its feed rate (an E-only move counts its E) plus
G4 dwells, layers the slicer's layer-change markers.
"""

import hashlib
import io
import math
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from catalog.samples import build_file, sample_models
from catalog.slicer import CorruptFile, read_sliced_file

FILAMENT_AREA = math.pi * (1.75 / 2) ** 2
SUFFIX = {"gcode": ".gcode", "bgcode": ".bgcode", "3mf": ".gcode.3mf"}

VERSIONS = [(variant.sku, number, version)
            for model in sample_models() for variant in model.variants
            for number, version in enumerate(variant.versions, start=1)]
IDS = [f"{sku}-v{number}" for sku, number, _version in VERSIONS]


@cache
def made(sku: str, number: int):
    version = next(v for s, n, v in VERSIONS if s == sku and n == number)
    return build_file(version)


# --- what is inside each format ---------------------------------------------------------------


def bgcode_blocks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(type, parameters, data inflated) of every block, each block's CRC32 checked."""
    assert data[:4] == b"GCDE"
    version, checksum = struct.unpack("<IH", data[4:10])
    assert (version, checksum) == (1, 1)
    blocks, position = [], 10
    while position < len(data):
        kind, compression, size = struct.unpack("<HHI", data[position: position + 8])
        head = 8
        stored = size
        if compression:
            (stored,) = struct.unpack("<I", data[position + 8: position + 12])
            head = 12
        params = 6 if kind == 5 else 2
        start = position + head + params
        payload = data[start: start + stored]
        (crc,) = struct.unpack("<I", data[start + stored: start + stored + 4])
        assert zlib.crc32(data[position: start + stored]) == crc, f"block at byte {position}: CRC32 differs"
        if compression == 1:
            payload = zlib.decompress(payload)
        else:
            assert compression == 0
        assert len(payload) == size
        blocks.append((kind, data[position + head: start], payload))
        position = start + stored + 4
    assert position == len(data)
    return blocks


def gcode_of(sample) -> str:
    if sample.format == "gcode":
        return sample.data.decode("utf-8")
    if sample.format == "bgcode":
        return "".join(payload.decode("utf-8") for kind, _p, payload in bgcode_blocks(sample.data) if kind == 1)
    with zipfile.ZipFile(io.BytesIO(sample.data)) as archive:
        return archive.read("Metadata/plate_1.gcode").decode("utf-8")


# --- an independent G-code interpreter ----------------------------------------------------


@dataclass
class LayerSeen:
    z: float | None
    extruded_before: float  # all slots, at the layer-change marker
    extrusion_z: set = field(default_factory=set)
    extruded: float = 0.0


@dataclass
class Run:
    per_slot: dict = field(default_factory=dict)
    seconds: float = 0.0
    layers: list = field(default_factory=list)
    progress: list = field(default_factory=list)  # (percent, minutes left)
    tool_changes: int = 0


_WORD = re.compile(r"([A-Z])(-?\d*\.?\d+)")


def interpret(text: str, *, marker: str, z_comment: re.Pattern) -> Run:
    position = {"X": 0.0, "Y": 0.0, "Z": 0.0}
    absolute_xyz, relative_e = True, False
    e_position = 0.0
    feed = None
    slot = 0
    run = Run()
    total = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if line == marker:
            run.layers.append(LayerSeen(z=None, extruded_before=total))
            continue
        found = z_comment.match(line)
        if found and run.layers and run.layers[-1].z is None:
            run.layers[-1].z = float(found.group(1))
            continue
        code = line.split(";", 1)[0].strip()
        if not code:
            continue
        command, _space, rest = code.partition(" ")
        words = {letter: float(value) for letter, value in _WORD.findall(rest)}
        if command in ("G0", "G1"):
            if "F" in words:
                feed = words["F"]
            target = dict(position)
            for axis in "XYZ":
                if axis in words:
                    target[axis] = words[axis] if absolute_xyz else position[axis] + words[axis]
            extruded = 0.0
            if "E" in words:
                extruded = words["E"] if relative_e else words["E"] - e_position
                e_position = e_position + extruded if relative_e else words["E"]
            distance = math.dist([position[a] for a in "XYZ"], [target[a] for a in "XYZ"])
            if distance == 0:
                distance = abs(extruded)
            if distance:
                assert feed, f"a move without a feed rate: {line}"
                run.seconds += distance / (feed / 60)
            run.per_slot[slot] = run.per_slot.get(slot, 0.0) + extruded
            total += extruded
            if run.layers:
                run.layers[-1].extruded += extruded
                if extruded > 0 and ("X" in words or "Y" in words):
                    run.layers[-1].extrusion_z.add(round(target["Z"], 4))
            position = target
        elif command == "G28":
            position = {"X": 0.0, "Y": 0.0, "Z": 0.0}
        elif command == "G90":
            absolute_xyz = True
        elif command == "G91":
            absolute_xyz = False
        elif command == "M82":
            relative_e = False
        elif command == "M83":
            relative_e = True
        elif command == "G92" and "E" in words:
            e_position = words["E"]
        elif command == "G4":
            run.seconds += words.get("S", 0.0) + words.get("P", 0.0) / 1000
        elif re.fullmatch(r"T\d{1,2}", command):
            if int(command[1:]) != slot:
                run.tool_changes += 1
            slot = int(command[1:])
        elif command == "M73" and "P" in words:
            run.progress.append((words["P"], words.get("R")))
    return run


MARKERS = {
    "gcode": (";LAYER_CHANGE", re.compile(r"^;Z:([0-9.]+)$")),
    "bgcode": (";LAYER_CHANGE", re.compile(r"^;Z:([0-9.]+)$")),
    "3mf": ("; CHANGE_LAYER", re.compile(r"^; Z_HEIGHT: ([0-9.]+)$")),
}


def densities(config: dict) -> list[float]:
    value = config["filament_density"]
    items = value if isinstance(value, list) else re.split(r"[;,]", value)
    return [float(item) for item in items]


# --- every file ---------------------------------------------------------------------------


@pytest.mark.parametrize(("sku", "number", "version"), VERSIONS, ids=IDS)
def test_sample_reads_back_with_the_figures_its_moves_add_up_to(sku, number, version):
    sample = made(sku, number)
    assert sample.name.endswith(SUFFIX[sample.format])
    assert len(sample.data) < 450_000, "sample files stay small"
    info = read_sliced_file(io.BytesIO(sample.data), name=sample.name)
    fields = info.fields
    assert info.format == version.format and info.sliced
    assert info.warnings == []
    assert (fields["slicer"], fields["slicer_version"]) == ("FabLab Samples", "1.0")
    assert fields["printer_model"] == version.job.printer.printer_model
    assert fields["filament_type"] == [f.type for f in version.job.filaments]
    assert [c.upper() for c in fields["filament_colour"]] == [f.colour for f in version.job.filaments]
    assert fields["layer_height"] == version.job.settings.layer_height

    marker, z_comment = MARKERS[sample.format]
    run = interpret(gcode_of(sample), marker=marker, z_comment=z_comment)
    slots = len(version.job.filaments)
    lengths = [run.per_slot.get(slot, 0.0) for slot in range(slots)]
    grams = [length * FILAMENT_AREA * density / 1000 for length, density in zip(lengths, densities(info.config),
                                                                                  strict=True)]
    assert all(length > 0 for length in lengths)

    # filament: per slot and in total, to 0.1 mm and 0.01 g
    assert len(fields["filament_used_mm"]) == slots
    for stated, counted in zip(fields["filament_used_mm"], lengths, strict=True):
        assert abs(stated - counted) <= 0.1, (stated, counted)
    for stated, counted in zip(fields["filament_used_g"], grams, strict=True):
        assert abs(stated - counted) <= 0.01, (stated, counted)
    assert abs(fields["filament_used_g_total"] - sum(grams)) <= 0.01

    # time: stated in whole seconds
    assert abs(fields["estimated_time_s"] - run.seconds) <= 0.5 + 1e-6, (fields["estimated_time_s"], run.seconds)

    # layers: each marker's Z is where that layer extrudes, Z rises, and every layer adds filament
    assert run.layers, "no layer-change markers"
    zs = [layer.z for layer in run.layers]
    assert all(z is not None for z in zs)
    assert zs == sorted(zs) and len(set(zs)) == len(zs)
    for layer in run.layers:
        assert layer.extrusion_z == {round(layer.z, 4)}, (layer.z, layer.extrusion_z)
        assert layer.extruded > 0
    cumulative = [layer.extruded_before for layer in run.layers] + [sum(lengths)]
    assert all(later > earlier for earlier, later in zip(cumulative, cumulative[1:], strict=False))
    assert fields["object_height"] == pytest.approx(zs[-1])
    if sample.format == "3mf":
        assert fields["layer_count"] == len(run.layers)
        assert info.plates[0].fields["layer_count"] == len(run.layers)
    height = version.job.settings.layer_height
    assert [round(b - a, 4) for a, b in zip(zs, zs[1:], strict=False)] == [height] * (len(zs) - 1)

    # progress: M73 from 0 % to 100 %, minutes left counting down to 0
    percents = [p for p, _r in run.progress]
    left = [r for _p, r in run.progress]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert left == sorted(left, reverse=True) and left[-1] == 0
    assert left[0] == round(run.seconds / 60)

    # pictures
    assert info.thumbnails
    for thumbnail in info.thumbnails:
        with Image.open(io.BytesIO(thumbnail.png())) as picture:
            assert picture.size == (thumbnail.width, thumbnail.height)

    if slots > 1:
        assert run.tool_changes >= 2


def test_the_sign_changes_filament_on_every_layer_it_prints_both_colours():
    sku, number, version = next(v for v in VERSIONS if v[0] == "SIGN-WHITE-YELLOW")
    sample = made(sku, number)
    run = interpret(gcode_of(sample), marker="; CHANGE_LAYER", z_comment=MARKERS["3mf"][1])
    raised = [layer for layer in run.layers if layer.z > 2.4]
    assert raised and run.tool_changes == len(raised)
    info = read_sliced_file(io.BytesIO(sample.data), name=sample.name)
    slots = info.plates[0].to_json()["fields"]["filament_used_g"]
    assert len(slots) == 2 and all(g > 0 for g in slots)


# --- format details -----------------------------------------------------------------------


def _first(fmt: str):
    sku, number, _version = next(v for v in VERSIONS if v[2].format == fmt)
    return made(sku, number)


def test_3mf_plate_gcode_md5_matches():
    for sku, number, version in VERSIONS:
        if version.format != "3mf":
            continue
        with zipfile.ZipFile(io.BytesIO(made(sku, number).data)) as archive:
            gcode = archive.read("Metadata/plate_1.gcode")
            stated = archive.read("Metadata/plate_1.gcode.md5").decode("ascii")
            names = archive.namelist()
        assert stated == hashlib.md5(gcode).hexdigest().upper()
        for entry in ("Metadata/slice_info.config", "Metadata/project_settings.config", "Metadata/plate_1.png"):
            assert entry in names


def test_bgcode_checksums_verify_and_a_changed_byte_is_refused():
    sample = _first("bgcode")
    blocks = bgcode_blocks(sample.data)  # checks every CRC32
    kinds = [kind for kind, _p, _d in blocks]
    # file metadata, printer metadata, thumbnails, print metadata, slicer metadata, G-code
    assert kinds[:2] == [0, 3] and kinds[-1] == 1
    assert kinds.index(4) < kinds.index(2) < kinds.index(1)
    assert set(kinds[2: kinds.index(4)]) == {5}
    damaged = bytearray(sample.data)
    damaged[len(damaged) // 2] ^= 0x01
    with pytest.raises(CorruptFile, match="checksum"):
        read_sliced_file(io.BytesIO(bytes(damaged)), name=sample.name)


def test_samples_are_the_same_bytes_in_another_process():
    """Deterministic: a fresh interpreter (other hash seed) makes the very same files."""
    picks = [next((s, n) for s, n, v in VERSIONS if v.format == fmt) for fmt in ("gcode", "bgcode", "3mf")]
    script = (
        "import hashlib, sys\n"
        "from catalog.samples import build_file, sample_models\n"
        "wanted = sys.argv[1:]\n"
        "for model in sample_models():\n"
        "    for variant in model.variants:\n"
        "        for number, version in enumerate(variant.versions, start=1):\n"
        "            if f'{variant.sku}-{number}' in wanted:\n"
        "                print(variant.sku, number, hashlib.sha256(build_file(version).data).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script, *(f"{s}-{n}" for s, n in picks)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    theirs = {(sku, int(number)): digest for sku, number, digest in (line.split() for line in out.splitlines())}
    ours = {(sku, number): hashlib.sha256(made(sku, number).data).hexdigest() for sku, number in picks}
    assert theirs == ours


def test_a_second_version_changes_one_setting():
    for model in sample_models():
        for variant in model.variants:
            for before, after in zip(variant.versions, variant.versions[1:], strict=False):
                old, new = before.job.settings, after.job.settings
                changed = {name for name in ("layer_height", "infill_density")
                           if getattr(old, name) != getattr(new, name)}
                assert len(changed) == 1, variant.sku
                assert after.change_note

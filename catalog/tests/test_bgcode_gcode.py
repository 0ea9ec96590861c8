"""The G-code blocks of binary G-code: decompression, MeatPack, and the layer table they give."""

import io
import struct
import zlib

import pytest

from catalog.slicer import read_sliced_file
from catalog.slicer.bgcode import iter_gcode
from catalog.slicer.errors import CorruptFile
from catalog.slicer.extrusion import table_grams
from catalog.slicer.meatpack import decode_block
from fablab.tests.helpers import corpus_path

# --- a small MeatPack writer for the tests (the format as described in catalog.slicer.meatpack) --

CODES = "0123456789. \nGX"


def _command(code: int) -> bytes:
    return bytes([0xFF, 0xFF, code])


def meatpack(lines: list[str], *, no_spaces: bool = True) -> bytes:
    """Pack G-code lines the way the slicer does: comments raw, G lines without spaces in no-space mode."""
    codes = CODES.replace(" ", "E") if no_spaces else CODES
    out = bytearray(_command(251))
    if no_spaces:
        out += _command(247)
    packing = True
    for line in lines:
        if line.startswith(";"):
            if packing:
                out += _command(250)
                packing = False
            out += (line + "\n").encode()
            continue
        if not packing:
            out += _command(251)
            packing = True
        if no_spaces and line.startswith("G"):
            line = line.replace(" ", "")
        text = line + "\n"
        for i in range(0, len(text), 2):
            first = text[i]
            second = text[i + 1] if i + 1 < len(text) else "\n"
            low = codes.index(first) if first in codes else 0xF
            high = codes.index(second) if second in codes else 0xF
            out.append(low | high << 4)
            if low == 0xF:
                out += first.encode()
            if high == 0xF:
                out += second.encode()
    return bytes(out)


LINES = ["; start", "M83", "G1 Z0.2 F720", "G1 X10 Y-5.5 E0.4", "M204 P1250 T1250", "; comment line",
         "G1 X20 E1 F1500", "T1", "G1 Y20.125 E-0.8", "G92 E0", "M73 P50 R1"]


def test_meatpack_gives_back_the_lines_with_spaces():
    assert decode_block(meatpack(LINES)) == ("\n".join(LINES) + "\n").encode()


def test_meatpack_without_no_space_mode_keeps_the_text():
    assert decode_block(meatpack(LINES, no_spaces=False)) == ("\n".join(LINES) + "\n").encode()


def test_meatpack_escapes_in_both_halves_and_blank_lines():
    # 'Y' and 'Z' are not packable: low escape ('Y' first), high escape ('1Y'), both ('YZ').
    data = meatpack(["G1 Y1", "G1 YZ", "G1 X1Y2"]) + _command(250) + b"\n\n"
    assert decode_block(data) == b"G1 Y1\nG1 Y Z\nG1 X1 Y2\n"


def test_unpacked_data_passes_through():
    assert decode_block(b"G1 X1 E2\n") == b"G1 X1 E2\n"


# --- the corpus -----------------------------------------------------------------------------------

import heatshrink2  # noqa: E402  (pinned in requirements.txt: the tests need it, they never skip)


def _decoded(name: str) -> bytes:
    path = corpus_path("slicer", name)
    with open(path, "rb") as handle:
        return b"".join(iter_gcode(handle, size=path.stat().st_size, name=name))


def test_decoded_gcode_equals_the_plain_export():
    ours = _decoded("prusaslicer-2.8.1_mk4s_minicube.bgcode").decode().splitlines()
    plain = corpus_path("slicer", "prusaslicer-2.8.1_mk4s_minicube_from-bgcode.gcode").read_text().splitlines()
    commands = [line for line in ours if line and not line.startswith(";")]
    assert commands == [line for line in plain if line and not line.startswith(";")]
    # The plain export adds the metadata blocks as comments and leaves out empty ';' lines; the
    # comments the toolpath needs (layer changes, heights, feature types) are the same.
    def markers(lines):
        return [line for line in lines if line.startswith((";LAYER_CHANGE", ";Z:", ";HEIGHT:", ";TYPE:"))]
    assert markers(ours) == markers(plain) and len(markers(ours)) > 100


def test_bgcode_layer_table_equals_its_text_export():
    binary = read_sliced_file(corpus_path("slicer", "prusaslicer-2.8.1_mk4s_minicube.bgcode")).layer_tables()["1"]
    text = read_sliced_file(corpus_path("slicer", "prusaslicer-2.8.1_mk4s_minicube_from-bgcode.gcode"))
    text = text.layer_tables()["1"]
    for key in ("layer_count", "z", "slots", "mm", "g_per_mm"):
        assert binary[key] == text[key], key
    assert sum(table_grams(binary, layer=binary["layer_count"])) == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize("name", ["prusaslicer-2.6.0_mini_minicube.bgcode",
                                  "prusaslicer-2.9.4_mk4ismmu3_shapebox.bgcode"])
def test_every_corpus_bgcode_has_layers(name):
    info = read_sliced_file(corpus_path("slicer", name))
    table = info.layer_tables()["1"]
    assert table["layer_count"] > 100
    assert not info.warnings


# --- synthetic files: every compression, and damage -----------------------------------------------

GCODE = b"M83\n;LAYER_CHANGE\n;Z:0.2\nG1 X1 Y1 E1\n;LAYER_CHANGE\n;Z:0.4\nG1 X2 Y2 E2\n" * 3


def _block(block_type: int, payload: bytes, *, compression: int = 0, encoding: int = 0,
           declared: int | None = None) -> bytes:
    if compression == 0:
        data = payload
    elif compression == 1:
        data = zlib.compress(payload)
    else:
        data = heatshrink2.compress(payload, window_sz2=11 if compression == 2 else 12, lookahead_sz2=4)
    size = len(payload) if declared is None else declared
    header = struct.pack("<HHI", block_type, compression, size)
    if compression:
        header += struct.pack("<I", len(data))
    params = struct.pack("<H", encoding) if block_type != 5 else struct.pack("<HHH", 0, 1, 1)
    body = header + params + data
    return body + struct.pack("<I", zlib.crc32(body))


def _bgcode(*gcode_blocks: bytes) -> bytes:
    return b"".join([
        b"GCDE" + struct.pack("<IH", 1, 1),
        _block(0, b"Producer=PrusaSlicer 2.8.1\n"),
        _block(3, b"printer_model=MK4S\nfilament_type=PLA\n"),
        _block(2, b"filament_diameter=1.75\nfilament_density=1.24\n", compression=1),
        *gcode_blocks,
    ])


@pytest.mark.parametrize("compression", [0, 1, 2, 3])
@pytest.mark.parametrize("encoding", [0, 1, 2])
def test_every_compression_and_encoding_gives_the_same_table(compression, encoding):
    lines = GCODE.decode().splitlines()
    payload = GCODE if encoding == 0 else meatpack(lines if encoding == 2 else
                                                   [line for line in lines if not line.startswith(";")] )
    if encoding == 1:
        # Without comments the file has no layer markers: layers come from Z, so give the moves a Z.
        payload = meatpack(["M83", "G1 Z0.2 X1 Y1 E1", "G1 Z0.4 X2 Y2 E2"])
    half = len(payload) // 2
    data = _bgcode(_block(1, payload[:half] if encoding == 0 else payload, compression=compression,
                          encoding=encoding),
                   *([_block(1, payload[half:], compression=compression)] if encoding == 0 else []))
    info = read_sliced_file(io.BytesIO(data), name="x.bgcode")
    table = info.layer_tables()["1"]
    if encoding == 1:
        assert table["layer_count"] == 2 and table["mm"] == [[1.0, 3.0]]
    else:
        assert table["layer_count"] == 6 and table["mm"][0][-1] == 9.0


def test_a_damaged_heatshrink_block_is_corrupt():
    with pytest.raises(CorruptFile, match="declared size"):
        read_sliced_file(io.BytesIO(_bgcode(_block(1, GCODE, compression=3, declared=len(GCODE) + 7))),
                         name="x.bgcode")


def test_a_gcode_block_declaring_a_huge_size_is_refused():
    with pytest.raises(CorruptFile, match="far larger"):
        read_sliced_file(io.BytesIO(_bgcode(_block(1, GCODE, compression=3, declared=1 << 30))), name="x.bgcode")

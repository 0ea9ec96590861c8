"""PrusaSlicer binary G-code (.bgcode, format version 1).

Layout (little-endian): a 10-byte file header (magic 'GCDE', version u32, checksum
type u16), then blocks. Each block: type u16, compression u16, uncompressed size u32
and, when compressed, compressed size u32; then its parameters (2 bytes, or 6 bytes
format/width/height for a thumbnail), its data and, with checksum type 1, a CRC32 of
header + parameters + data. Metadata blocks are INI text (key=value lines), raw or
deflated. G-code blocks are compressed with none, deflate or heatshrink (window 2^11 or
2^12, lookahead 2^4; the heatshrink2 package) and encoded as plain text or MeatPack
(catalog.slicer.meatpack); they are decoded one block at a time (PrusaSlicer writes blocks
of 64 KiB of text) and fed to the extrusion counter, so the file gets its layer table
like a text G-code.

Every block's size and checksum is verified while walking the file in small reads,
so a truncated or damaged file is reported as CorruptFile and memory stays flat: only
one block's data is held at a time.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from catalog.slicer import meatpack
from catalog.slicer.errors import CorruptFile, UnsupportedFile
from catalog.slicer.extrusion import ExtrusionCounter
from catalog.slicer.gcode import Scan, layers_for, map_slic3r_family, split_name_version
from catalog.slicer.result import Plate, SlicedFileInfo, empty_fields
from catalog.slicer.thumbnails import Thumbnail

MAGIC = b"GCDE"
FILE_METADATA, GCODE, SLICER_METADATA, PRINTER_METADATA, PRINT_METADATA, THUMBNAIL = range(6)
_BLOCK_NAMES = {
    FILE_METADATA: "file metadata", GCODE: "G-code", SLICER_METADATA: "slicer metadata",
    PRINTER_METADATA: "printer metadata", PRINT_METADATA: "print metadata", THUMBNAIL: "thumbnail",
}
_COMPRESSIONS = {0: "none", 1: "deflate", 2: "heatshrink 11/4", 3: "heatshrink 12/4"}
_THUMB_FORMATS = {0: "PNG", 1: "JPG", 2: "QOI"}
MAX_METADATA_BYTES = 64 << 20
MAX_THUMBNAIL_BYTES = 32 << 20
MAX_GCODE_BLOCK_BYTES = 16 << 20  # PrusaSlicer writes 64 KiB blocks
READ_CHUNK = 1 << 20
_NO_DECODER = object()  # stands for a G-code block that cannot be decompressed here (no heatshrink2)


def read_bgcode(handle: BinaryIO, *, size: int, name: str) -> SlicedFileInfo:
    metadata: dict[int, dict[str, str]] = {}
    thumbnails: list[Thumbnail] = []
    warnings: list[str] = []
    block_counts: dict[int, int] = {}
    slicer_lines = 0
    counter = ExtrusionCounter()
    decoding = {"gcode": True}  # off once a block cannot be decompressed here
    for block_type, _compression, data, params in _blocks(handle, size, name, decode=lambda: decoding["gcode"]):
        block_counts[block_type] = block_counts.get(block_type, 0) + 1
        if block_type == GCODE:
            if data is _NO_DECODER:
                decoding["gcode"] = False
                warnings.append(f"{name}: its G-code is heatshrink-compressed and the heatshrink2 package is not "
                                f"installed, so no extrusion per layer was computed.")
            elif data:
                counter.feed(data)
            continue
        if block_type == THUMBNAIL:
            fmt_code, width, height = struct.unpack("<HHH", params)
            fmt = _THUMB_FORMATS.get(fmt_code)
            if fmt is None:
                warnings.append(f"{name}: a thumbnail in an unknown image format ({fmt_code}) was skipped.")
                continue
            thumbnails.append(Thumbnail(format=fmt, width=width, height=height, data=data, plate_index=1,
                                        role="gcode", source="bgcode"))
            continue
        text = data.decode("utf-8", errors="replace")
        values = metadata.setdefault(block_type, {})
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                continue
            values[key.strip()] = value.strip()
            if block_type == SLICER_METADATA:
                slicer_lines += 1
    if block_counts.get(FILE_METADATA, 0) == 0 and not metadata:
        raise CorruptFile(f"{name} is a binary G-code file without any metadata block; it is damaged.")
    if block_counts.get(GCODE, 0) == 0:
        warnings.append(f"{name} contains no G-code blocks; it may be incomplete.")
    counts = counter.finish() if decoding["gcode"] else None
    return _to_info(metadata, thumbnails, warnings, slicer_lines, counts, name=name)


def iter_gcode(handle: BinaryIO, *, size: int, name: str) -> Iterator[bytes]:
    """The text G-code of a .bgcode file, one decoded block at a time (checksums verified)."""
    for block_type, _compression, data, _params in _blocks(handle, size, name, decode=lambda: True):
        if block_type == GCODE:
            if data is _NO_DECODER:
                raise UnsupportedFile(f"{name} is heatshrink-compressed; the heatshrink2 package is needed to "
                                      f"read its G-code.")
            yield data


def _blocks(handle: BinaryIO, size: int, name: str, *, decode):
    handle.seek(0)
    header = handle.read(10)
    if len(header) < 10 or header[:4] != MAGIC:
        raise CorruptFile(f"{name} is a binary G-code file cut off inside its header. Export it again.")
    version, checksum_type = struct.unpack("<IH", header[4:10])
    if version != 1:
        raise UnsupportedFile(f"{name} is binary G-code version {version}; only version 1 can be read. "
                              f"Export it again with PrusaSlicer 2.6 or newer, or as text G-code.")
    if checksum_type not in (0, 1):
        raise CorruptFile(f"{name} declares an unknown checksum type ({checksum_type}); the file is damaged.")
    position = 10
    while position < size:
        block = _read_block(handle, position, size, checksum_type, name=name, decode_gcode=decode())
        position = handle.tell()
        yield block


def _read_block(handle: BinaryIO, position: int, size: int, checksum_type: int, *, name: str,
                decode_gcode: bool = False):
    """Read and verify one block; G-code payloads are decoded when `decode_gcode`, else skipped."""
    handle.seek(position)
    head = handle.read(8)
    if len(head) < 8:
        raise _truncated(name)
    block_type, compression, uncompressed = struct.unpack("<HHI", head)
    if block_type not in _BLOCK_NAMES:
        raise CorruptFile(f"{name} has an unknown block type ({block_type}) at byte {position}; the file is "
                          f"damaged. Export it again.")
    if compression not in _COMPRESSIONS:
        raise CorruptFile(f"{name} has a block with an unknown compression ({compression}); the file is damaged.")
    compressed = uncompressed
    if compression:
        extra = handle.read(4)
        if len(extra) < 4:
            raise _truncated(name)
        (compressed,) = struct.unpack("<I", extra)
        head += extra
    params_size = 6 if block_type == THUMBNAIL else 2
    checksum_size = 4 if checksum_type == 1 else 0
    end = position + len(head) + params_size + compressed + checksum_size
    if end > size:
        raise _truncated(name)
    params = handle.read(params_size)
    crc = zlib.crc32(head + params)
    keep = block_type != GCODE or decode_gcode
    limit = {THUMBNAIL: MAX_THUMBNAIL_BYTES, GCODE: MAX_GCODE_BLOCK_BYTES}.get(block_type, MAX_METADATA_BYTES)
    if keep and (compressed > limit or uncompressed > limit):
        raise CorruptFile(f"{name} has a {_BLOCK_NAMES[block_type]} block of {max(compressed, uncompressed)} "
                          f"bytes, far larger than any slicer writes; the file is damaged.")
    chunks = []
    remaining = compressed
    while remaining:
        piece = handle.read(min(READ_CHUNK, remaining))
        if not piece:
            raise _truncated(name)
        crc = zlib.crc32(piece, crc)
        remaining -= len(piece)
        if keep:
            chunks.append(piece)
    if checksum_size:
        stored = handle.read(4)
        if len(stored) < 4:
            raise _truncated(name)
        if struct.unpack("<I", stored)[0] != crc:
            raise CorruptFile(f"{name} is damaged: the checksum of its {_BLOCK_NAMES[block_type]} block at byte "
                              f"{position} does not match. Copy or export the file again.")
    if not keep:
        return block_type, compression, b"", params
    data = b"".join(chunks)
    if compression == 1:
        try:
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, uncompressed + 1)
        except zlib.error as exc:
            raise CorruptFile(f"{name} is damaged: its {_BLOCK_NAMES[block_type]} block cannot be "
                              f"decompressed.") from exc
    elif compression:
        if block_type != GCODE:
            # heatshrink is only used for G-code blocks by PrusaSlicer; metadata in it is not readable here.
            return block_type, compression, b"", params
        data = _heatshrink(data, window=11 if compression == 2 else 12, name=name)
        if data is _NO_DECODER:
            return block_type, compression, data, params
    if len(data) != uncompressed:
        raise CorruptFile(f"{name} is damaged: its {_BLOCK_NAMES[block_type]} block does not have its "
                          f"declared size.")
    if block_type == GCODE:
        (encoding,) = struct.unpack("<H", params)
        if encoding in (1, 2):
            data = meatpack.decode_block(data)
        elif encoding != 0:
            raise CorruptFile(f"{name} has a G-code block with an unknown encoding ({encoding}); the file is "
                              f"damaged.")
    return block_type, compression, data, params


def _heatshrink(data: bytes, *, window: int, name: str):
    try:
        import heatshrink2
    except ImportError:
        return _NO_DECODER
    try:
        return heatshrink2.decompress(data, window_sz2=window, lookahead_sz2=4)
    except (ValueError, RuntimeError) as exc:
        raise CorruptFile(f"{name} is damaged: a G-code block cannot be decompressed.") from exc


def _truncated(name: str) -> CorruptFile:
    return CorruptFile(f"{name} is a binary G-code file that is cut off (truncated). Upload the complete file "
                       f"or export it again.")


def _to_info(metadata, thumbnails, warnings, slicer_lines, counts, *, name) -> SlicedFileInfo:
    file_meta = metadata.get(FILE_METADATA, {})
    printer = metadata.get(PRINTER_METADATA, {})
    printed = metadata.get(PRINT_METADATA, {})
    config = metadata.get(SLICER_METADATA, {})
    scan = Scan(config=dict(config), kv={**printer, **printed}, thumbnails=thumbnails, warnings=warnings)
    fields = empty_fields()
    extra: dict = {"bgcode_version": 1}
    producer = file_meta.get("Producer")
    if producer:
        fields["slicer"], fields["slicer_version"] = split_name_version(producer)
    if file_meta.get("Produced on"):
        extra["produced_on"] = file_meta["Produced on"]
    map_slic3r_family(scan, fields, extra)
    fields["thumbnail_count"] = len(thumbnails)
    fields["config_key_count"] = slicer_lines if config else None
    fields["sliced"] = True
    layers = layers_for(counts, config=dict(config), fields=fields, extra=extra)
    plate = Plate(index=1, fields=dict(fields), thumbnail_indexes=list(range(len(thumbnails))),
                  extra={"config_key_count": fields["config_key_count"]}, layers=layers)
    return SlicedFileInfo(format="bgcode", sliced=True, fields=fields, plates=[plate], thumbnails=thumbnails,
                          config=dict(config), extra=extra, warnings=warnings)

"""STL meshes (binary and ASCII): not sliced, but we report triangle count and size.

A mesh without one triangle whose corners are numbers is refused: there is nothing to print.

Both kinds are read in chunks, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from catalog.slicer.errors import CorruptFile
from catalog.slicer.result import SlicedFileInfo, empty_fields

_TRIANGLE_FIELDS = [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")]
_CHUNK_TRIANGLES = 65536
_ASCII_CHUNK = 4 << 20
_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")


def is_binary_stl(head: bytes, size: int) -> bool:
    if size < 84 or len(head) < 84:
        return False
    (count,) = struct.unpack_from("<I", head, 80)
    return 84 + 50 * count == size


def is_ascii_stl(head: bytes) -> bool:
    stripped = head.lstrip()
    return stripped[:5].lower() == b"solid" and (b"facet normal" in head or b"endsolid" in head)


def read_stl(handle: BinaryIO, *, size: int, name: str) -> SlicedFileInfo:
    handle.seek(0)
    head = handle.read(84)
    if is_binary_stl(head, size):
        count, low, high = _binary(handle, size, name=name)
        kind = "binary"
    else:
        count, low, high = _ascii(handle, name=name)
        kind = "ascii"
    if not count or low is None or high is None:
        # Nothing to print or to preview: an empty export, or triangles whose corners are not numbers.
        raise CorruptFile(f"{name} contains no readable triangles ({kind} STL, {count} declared). Export the "
                          f"mesh again from your CAD program.")
    extra = {
        "stl_kind": kind, "triangle_count": count,
        "bounding_box_min_mm": [round(float(v), 4) for v in low],
        "bounding_box_max_mm": [round(float(v), 4) for v in high],
        "size_mm": [round(float(h - lo), 4) for lo, h in zip(low, high, strict=True)],
    }
    fields = empty_fields()
    fields["sliced"] = False
    return SlicedFileInfo(format="stl", sliced=False, fields=fields, plates=[], thumbnails=[], config={},
                          extra=extra, warnings=[])


def _binary(handle: BinaryIO, size: int, *, name: str):
    import numpy as np

    triangle = np.dtype(_TRIANGLE_FIELDS)
    handle.seek(84)
    count = (size - 84) // 50
    low = high = None
    remaining = count
    while remaining:
        take = min(_CHUNK_TRIANGLES, remaining)
        data = handle.read(take * 50)
        if len(data) < take * 50:
            raise CorruptFile(f"{name} is cut off: it has fewer triangles than its header declares.")
        vertices = np.frombuffer(data, dtype=triangle)["vertices"].reshape(-1, 3)
        finite = vertices[np.isfinite(vertices).all(axis=1)]
        if len(finite):
            chunk_low, chunk_high = finite.min(axis=0), finite.max(axis=0)
            low = chunk_low if low is None else np.minimum(low, chunk_low)
            high = chunk_high if high is None else np.maximum(high, chunk_high)
        remaining -= take
    return count, low, high


def _ascii(handle: BinaryIO, *, name: str):
    import numpy as np

    handle.seek(0)
    facets = 0
    low = high = None
    carry = b""
    while True:
        chunk = handle.read(_ASCII_CHUNK)
        data = carry + chunk
        if chunk:
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > 1 << 20:
                    raise CorruptFile(f"{name} is not a valid ASCII STL (a line is longer than 1 MiB).")
                carry = data
                continue
            data, carry = data[: cut + 1], data[cut + 1:]
        else:
            carry = b""
        facets += data.count(b"endfacet")
        values = []
        for triple in _VERTEX.findall(data):
            try:
                values.append([float(v) for v in triple])
            except ValueError:
                continue
        if values:
            array = np.asarray(values, dtype=np.float64)
            array = array[np.isfinite(array).all(axis=1)]
            if len(array):
                chunk_low, chunk_high = array.min(axis=0), array.max(axis=0)
                low = chunk_low if low is None else np.minimum(low, chunk_low)
                high = chunk_high if high is None else np.maximum(high, chunk_high)
        if not chunk:
            break
    return facets, low, high

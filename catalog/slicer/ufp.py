"""Cura's Ultimaker Format Package (.ufp): the G-code and its preview in an OPC ZIP package.

Layout (Cura 4.x, as in the corpus): `/_rels/.rels` points at `/3D/model.gcode` with
Ultimaker's gcode relationship; `/3D/_rels/model.gcode.rels` points at the preview
`/Metadata/thumbnail.png` and the material profiles `/Materials/*.xml.fdm_material`;
`/[Content_Types].xml` names the types. Cura writes every entry name with a leading '/'
(an OPC part name), so parts are looked up with and without it.

The package is read through zipsafety.SafeZip like a 3MF (entry count, sizes, ratios and
the bytes actually inflated are limited; '..', drive letters and backslash roots are
refused); only the single leading '/' of part names is allowed. The G-code part is
streamed and read by the G-code reader; the preview is kept as the file's thumbnail.
A package without its G-code part is refused with a CorruptFile error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import BinaryIO

from catalog.slicer import gcode
from catalog.slicer.errors import CorruptFile, UnsafeArchive
from catalog.slicer.result import SlicedFileInfo
from catalog.slicer.thumbnails import Thumbnail, image_size
from catalog.slicer.zipsafety import SafeZip, ZipLimits

GCODE_PART = "/3D/model.gcode"
THUMBNAIL_PART = "/Metadata/thumbnail.png"
GCODE_RELATIONSHIP = "http://schemas.ultimaker.org/package/2018/relationships/gcode"
THUMBNAIL_RELATIONSHIP = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
MAX_RELS_BYTES = 256 << 10
MAX_IMAGE_BYTES = 32 << 20
_IMAGE = re.compile(r"\.(png|jpe?g|webp|qoi)$", re.I)
_MATERIAL = re.compile(r"\.fdm_material$", re.I)


def _bare(names) -> set[str]:
    return {name.lstrip("/") for name in names}


def is_ufp(names: list[str]) -> bool:
    """A package holding Cura's G-code part ('/3D/model.gcode', with or without the leading '/')."""
    return GCODE_PART.lstrip("/") in _bare(names)


def is_opc_package(names: list[str]) -> bool:
    return "[Content_Types].xml" in _bare(names)


def declares_gcode(handle: BinaryIO, *, size: int, name: str, limits: ZipLimits | None = None) -> bool:
    """True when the package's root relationships name a G-code part (Ultimaker's relationship type),
    whether or not that part is in the archive."""
    archive = SafeZip(handle, size=size, name=name, limits=limits, rooted_names=True)
    return any(kind == GCODE_RELATIONSHIP for kind, _target in _relationships(archive, "/_rels/.rels"))


def read_ufp(handle: BinaryIO, *, size: int, name: str, limits: ZipLimits | None = None) -> SlicedFileInfo:
    archive = SafeZip(handle, size=size, name=name, limits=limits, rooted_names=True)
    targets = [target for kind, target in _relationships(archive, "/_rels/.rels") if kind == GCODE_RELATIONSHIP]
    part = targets[0] if targets else GCODE_PART
    entry = archive.part(part)
    if entry is None:
        raise CorruptFile(f"{name} is a Cura UFP package without its G-code ({part} is missing). Save the "
                          f"project as UFP again from Cura, or upload the .gcode.")
    from catalog.slicer.reader import SNIFF_BYTES, looks_like_gcode

    if not looks_like_gcode(archive.read(entry, max_bytes=SNIFF_BYTES)):
        raise CorruptFile(f"{name}: the G-code part of this UFP package ({entry}) is not G-code; the package is "
                          f"damaged. Save it as UFP again from Cura, or upload the .gcode.")
    result = gcode.read_gcode_stream(archive.stream(entry), name=f"{name} ({entry})")
    for thumbnail in result.thumbnails:
        thumbnail.source = entry
    info = gcode.to_info(result, fmt="ufp")
    info.plates[0].gcode_name = entry

    names = archive.names()
    warnings = info.warnings
    extra = info.extra
    extra["archive_gcode_entries"] = [entry]
    extra["archive_images"] = sorted(n for n in names if _IMAGE.search(n))
    extra["archive_materials"] = sorted(n for n in names if _MATERIAL.search(n))
    part_rels = _part_relationships_name(entry)
    previews = [target for kind, target in _relationships(archive, part_rels) if kind == THUMBNAIL_RELATIONSHIP]
    preview_entry = archive.part(previews[0]) if previews else archive.part(THUMBNAIL_PART)
    if preview_entry is not None:
        thumbnail = _preview(archive, preview_entry, warnings)
        if thumbnail is not None:
            info.thumbnails.append(thumbnail)
            info.plates[0].thumbnail_indexes.append(len(info.thumbnails) - 1)
            extra["archive_thumbnail"] = f"{thumbnail.width}x{thumbnail.height} {thumbnail.format}"
    return info


def _part_relationships_name(entry: str) -> str:
    """'/3D/model.gcode' -> '/3D/_rels/model.gcode.rels' (OPC: a part's relationships sit beside it)."""
    folder, _slash, base = entry.lstrip("/").rpartition("/")
    return f"/{folder}/_rels/{base}.rels" if folder else f"/_rels/{base}.rels"


def _relationships(archive: SafeZip, part_name: str) -> list[tuple[str, str]]:
    """(type, target) of each relationship in a .rels part; [] when the part is absent or unreadable."""
    entry = archive.part(part_name)
    if entry is None:
        return []
    info = archive.infos[entry]
    if info.file_size > MAX_RELS_BYTES:
        return []
    data = archive.read(entry)
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise UnsafeArchive(f"{archive.name}: {entry} declares XML entities, which a UFP package never does; "
                            f"the file is refused.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return []
    found = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Relationship":
            continue
        kind, target = element.get("Type") or "", element.get("Target") or ""
        if target:
            found.append((kind, target if target.startswith("/") else _resolve(part_name, target)))
    return found


def _resolve(rels_part: str, target: str) -> str:
    """A relative target is relative to the folder of the part the .rels file describes."""
    folder = rels_part.lstrip("/").rpartition("/_rels/")[0] if "/_rels/" in rels_part else ""
    return "/" + (f"{folder}/{target}" if folder else target)


def _preview(archive: SafeZip, entry: str, warnings: list[str]) -> Thumbnail | None:
    info = archive.infos[entry]
    if info.file_size > MAX_IMAGE_BYTES:
        warnings.append(f"{archive.name}: the preview {entry} is {info.file_size >> 20} MiB; skipped.")
        return None
    data = archive.read(entry)
    measured = image_size(data)
    if measured is None:
        warnings.append(f"{archive.name}: the preview {entry} is damaged or not an image; skipped.")
        return None
    fmt, width, height = measured
    return Thumbnail(format=fmt, width=width, height=height, data=data, plate_index=1, role="thumbnail",
                     source=entry)

"""Entry point: decide a file's type from its content and hand it to the right reader.

The file name is used for messages only. Whatever the bytes, only SlicerFileError
(UnsupportedFile, CorruptFile, UnsafeArchive) leaves read_sliced_file.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from catalog.slicer.errors import CorruptFile, SlicerFileError, UnsafeArchive, UnsupportedFile
from catalog.slicer.result import SlicedFileInfo
from catalog.slicer.zipsafety import ZipLimits

logger = logging.getLogger(__name__)

SNIFF_BYTES = 65536
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13))
_CORE_LINE = re.compile(r"^(?:;|[GMT]\d)", re.I)
_GCODE_LINE = re.compile(
    r"^(?:;|[GMTgmt]\d|N\d+\s|[XYZEFSxyzefs]-?[\d.]|[A-Z][A-Z0-9_]{2,}(?:\s|$)|[a-z][a-z0-9]*_[a-z0-9_]+(?:\s|$)|%)"
)


def read_sliced_file(source: str | os.PathLike | BinaryIO, *, name: str | None = None,
                     limits: ZipLimits | None = None) -> SlicedFileInfo:
    """Read a G-code, binary G-code, 3MF, Cura UFP or STL file (a path or a seekable binary file object)."""
    with _opened(source, name) as (handle, size, label):
        try:
            kind = _sniff(handle, size, label, limits)
            return _read(kind, handle, size, label, limits)
        except SlicerFileError:
            raise
        except MemoryError as exc:
            raise CorruptFile(f"{label} could not be read: it needs more memory than a sliced file should.") from exc
        except Exception as exc:  # a parser bug or a damaged file must not escape as another type
            logger.exception("unexpected error reading %s", label)
            raise CorruptFile(f"{label} could not be read: its content looks damaged "
                              f"({exc.__class__.__name__}). Export it again from the slicer.") from exc


def detect_format(source: str | os.PathLike | BinaryIO, *, name: str | None = None) -> str:
    """'gcode' | 'bgcode' | '3mf' | 'ufp' | 'stl', decided from the content; UnsupportedFile otherwise."""
    with _opened(source, name) as (handle, size, label):
        try:
            return _sniff(handle, size, label)
        except SlicerFileError:
            raise
        except Exception as exc:
            raise CorruptFile(f"{label} could not be read: its content looks damaged "
                              f"({exc.__class__.__name__}).") from exc


@contextmanager
def _opened(source, name: str | None) -> Iterator[tuple[BinaryIO, int, str]]:
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        label = name or os.path.basename(path) or "The file"
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SlicerFileError(f"{label} cannot be opened ({exc.strerror or exc.__class__.__name__}).") from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            yield handle, size, label
        finally:
            handle.close()
        return
    label = name or os.path.basename(str(getattr(source, "name", "") or "")) or "The file"
    try:
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
    except (AttributeError, OSError, ValueError) as exc:
        raise SlicerFileError(f"{label} cannot be read: the reader needs a seekable file.") from exc
    try:
        yield source, size, label
    finally:
        try:
            source.seek(0)
        except (OSError, ValueError):
            pass


def _sniff(handle: BinaryIO, size: int, label: str, limits: ZipLimits | None = None) -> str:
    if size == 0:
        raise UnsupportedFile(f"{label} is empty. Upload the file your slicer exported.")
    handle.seek(0)
    head = handle.read(SNIFF_BYTES)
    if head.startswith(b"GCDE"):
        return "bgcode"
    if head.startswith(_ZIP_MAGIC):
        from catalog.slicer import ufp
        from catalog.slicer.threemf import is_3mf
        from catalog.slicer.zipsafety import declared_entry_count

        limits = limits or ZipLimits()
        declared = declared_entry_count(handle, size)
        if declared is not None and declared > limits.max_entries:
            raise UnsafeArchive(f"{label} holds {declared} entries; archives with more than {limits.max_entries} "
                                f"are refused. A 3MF from a slicer holds far fewer.")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
        except Exception as exc:  # zipfile raises many types on damaged archives
            raise CorruptFile(f"{label} is a damaged ZIP/3MF archive and cannot be opened. Upload the complete "
                              f"file or save it again from the slicer.") from exc
        if "3D/3dmodel.model" in names:
            return "3mf"
        if ufp.is_ufp(names):
            return "ufp"
        # An OPC package whose relationships name a G-code part is a UFP, even when the part is missing
        # (reading it then says so); other packages with a [Content_Types].xml are 3MF projects.
        if ufp.is_opc_package(names) and ufp.declares_gcode(handle, size=size, name=label, limits=limits):
            return "ufp"
        if not is_3mf(names):
            raise UnsupportedFile(f"{label} is a ZIP archive but not a 3MF (it has no 3D/3dmodel.model or "
                                  f"[Content_Types].xml) nor a Cura UFP package. Upload the .3mf or .gcode.3mf "
                                  f"the slicer saved, or Cura's .ufp.")
        return "3mf"
    from catalog.slicer.stl import is_ascii_stl, is_binary_stl

    if is_binary_stl(head, size):
        return "stl"
    if is_ascii_stl(head) and looks_like_text(head):
        return "stl"
    if looks_like_gcode(head):
        return "gcode"
    raise UnsupportedFile(f"{label} is not G-code, binary G-code, 3MF or STL: its content is not recognised. "
                          f"Upload the file your slicer exported (.gcode, .bgcode, .3mf, .gcode.3mf) or an .stl.")


def looks_like_text(sample: bytes) -> bool:
    if not sample or b"\x00" in sample:
        return False
    control = len(sample) - len(sample.translate(None, _CONTROL))
    return control <= len(sample) // 200


def looks_like_gcode(sample: bytes) -> bool:
    if not looks_like_text(sample):
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = sample[: exc.start].decode("utf-8") if exc.start > len(sample) - 4 else sample.decode("latin-1")
    lines = [line.strip() for line in text.splitlines()[:500]]
    lines = [line for line in lines if line]
    if not lines:
        return False
    if not any(_CORE_LINE.match(line) for line in lines):
        return False
    good = sum(1 for line in lines if _GCODE_LINE.match(line))
    return good * 2 >= len(lines)


def _read(kind: str, handle: BinaryIO, size: int, label: str, limits: ZipLimits | None) -> SlicedFileInfo:
    if kind == "bgcode":
        from catalog.slicer.bgcode import read_bgcode

        return read_bgcode(handle, size=size, name=label)
    if kind == "3mf":
        from catalog.slicer.threemf import read_3mf

        return read_3mf(handle, size=size, name=label, limits=limits)
    if kind == "ufp":
        from catalog.slicer.ufp import read_ufp

        return read_ufp(handle, size=size, name=label, limits=limits)
    if kind == "stl":
        from catalog.slicer.stl import read_stl

        return read_stl(handle, size=size, name=label)
    from catalog.slicer.gcode import read_gcode

    return read_gcode(handle, size=size, name=label)

"""Reading ZIP archives (3MF) without trusting them.

Before any entry is read, the central directory is checked: number of entries, entry
names (no absolute paths, drive letters or '..'), declared sizes and compression
ratios. Entries are then read as streams, never extracted to disk, by our own inflater
that counts the bytes actually produced: an entry that inflates past its declared size
or past the limits is stopped there, whatever the directory claims. The CRC of an
entry read to its end is checked.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from catalog.slicer.errors import CorruptFile, UnsafeArchive, UnsupportedFile

MiB = 1 << 20
GiB = 1 << 30
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DRIVE = re.compile(r"^[A-Za-z]:")
READ_CHUNK = 256 << 10
OUT_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 2000
    max_total_uncompressed: int = 2 * GiB
    max_entry_uncompressed: int = 1 * GiB
    max_ratio: float = 200
    ratio_min_size: int = 1 * MiB  # the ratio is only checked for entries larger than this


class SafeZip:
    """A checked view of a ZIP archive; read entries with `stream()` or `read()`."""

    def __init__(self, handle: BinaryIO, *, size: int, name: str, limits: ZipLimits | None = None,
                 rooted_names: bool = False):
        """`rooted_names`: entry names may start with one '/' (OPC part names as Cura's UFP writes them,
        '/3D/model.gcode'); they are still never a path outside the archive, since nothing is extracted,
        and '..', drive letters, '//' and backslash roots stay refused."""
        self.handle = handle
        self.size = size
        self.name = name
        self.limits = limits or ZipLimits()
        self.rooted_names = rooted_names
        self.inflated = 0
        declared = declared_entry_count(handle, size)
        if declared is not None and declared > self.limits.max_entries:
            raise UnsafeArchive(f"{name} holds {declared} entries; archives with more than "
                                f"{self.limits.max_entries} are refused. A slicer's 3MF or UFP holds far fewer.")
        try:
            self._zip = zipfile.ZipFile(handle)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error,
                NotImplementedError, KeyError, IndexError, OverflowError, UnicodeDecodeError) as exc:
            raise CorruptFile(f"{name} is a damaged ZIP archive ({_reason(exc)}). Upload the complete file "
                              f"or save it again from the slicer.") from exc
        self._check(infos)
        self.infos = {info.filename: info for info in infos if not info.is_dir()}

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        name = self.name
        if len(infos) > limits.max_entries:
            raise UnsafeArchive(f"{name} holds {len(infos)} entries; archives with more than {limits.max_entries} "
                                f"are refused. A slicer's 3MF or UFP holds far fewer.")
        total = 0
        for info in infos:
            entry = info.filename
            raw = info.orig_filename
            for candidate in (entry, raw):
                if self.rooted_names and candidate.startswith("/"):
                    candidate = candidate[1:]
                parts = re.split(r"[\\/]", candidate)
                if candidate.startswith(("/", "\\")) or _DRIVE.match(candidate) or ".." in parts:
                    raise UnsafeArchive(f"{name} contains an entry with an unsafe path ({raw!r}); the archive "
                                        f"is refused.")
            if info.file_size > limits.max_entry_uncompressed:
                raise UnsafeArchive(f"{name}: entry {entry!r} would inflate to {info.file_size / MiB:.0f} MiB, over "
                                    f"the {limits.max_entry_uncompressed / MiB:.0f} MiB limit per entry.")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > limits.ratio_min_size and ratio > limits.max_ratio:
                raise UnsafeArchive(f"{name}: entry {entry!r} is compressed {ratio:.0f} times, more than the "
                                    f"{limits.max_ratio:.0f} times allowed (a zip bomb?); the archive is refused.")
            total += info.file_size
            if total > limits.max_total_uncompressed:
                raise UnsafeArchive(f"{name} would inflate to more than {limits.max_total_uncompressed / MiB:.0f} MiB "
                                    f"in total; the archive is refused.")

    def names(self) -> list[str]:
        return list(self.infos)

    def part(self, part_name: str) -> str | None:
        """The entry holding an OPC part ('/3D/model.gcode'), written with or without the leading '/'."""
        bare = part_name.lstrip("/")
        for candidate in (part_name, bare, "/" + bare):
            if candidate in self.infos:
                return candidate
        return None

    def stream(self, entry: str) -> Iterator[bytes]:
        """Yield the entry's bytes in chunks (at most 1 MiB), counting and limiting what is inflated."""
        info = self.infos[entry]
        if info.flag_bits & 0x1:
            raise UnsupportedFile(f"{self.name} is password-protected ({entry!r} is encrypted); upload it without "
                                  f"a password.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsupportedFile(f"{self.name}: entry {entry!r} uses a compression method ({info.compress_type}) "
                                  f"that 3MF files do not use; save the file again from the slicer.")
        offset = self._data_offset(info)
        if offset + info.compress_size > self.size:
            raise CorruptFile(f"{self.name} is cut off: entry {entry!r} runs past the end of the file. Upload the "
                              f"complete file.")
        return self._inflate(info, offset)

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        if not 0 <= info.header_offset < self.size:
            raise CorruptFile(f"{self.name} is a damaged ZIP archive (entry {info.filename!r} points outside the "
                              f"file).")
        self.handle.seek(info.header_offset)
        header = self.handle.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
            raise CorruptFile(f"{self.name} is a damaged ZIP archive (entry {info.filename!r} has no local header).")
        fields = _LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length

    def _inflate(self, info: zipfile.ZipInfo, offset: int) -> Iterator[bytes]:
        limits = self.limits
        entry = info.filename
        declared = info.file_size
        cap = min(declared, limits.max_entry_uncompressed)
        produced = 0
        crc = 0
        remaining = info.compress_size
        position = offset
        inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        pending = b""
        while True:
            if inflater is not None and inflater.unconsumed_tail:
                pending = inflater.unconsumed_tail
            elif remaining > 0:
                self.handle.seek(position)
                pending = self.handle.read(min(READ_CHUNK, remaining))
                if not pending:
                    raise CorruptFile(f"{self.name} is cut off inside entry {entry!r}.")
                position += len(pending)
                remaining -= len(pending)
            else:
                break
            if inflater is None:
                out = pending
            else:
                try:
                    out = inflater.decompress(pending, OUT_CHUNK)
                except zlib.error as exc:
                    raise CorruptFile(f"{self.name} is damaged: entry {entry!r} cannot be decompressed.") from exc
            if out:
                produced += len(out)
                self.inflated += len(out)
                if produced > cap:
                    if produced > declared:
                        raise UnsafeArchive(f"{self.name}: entry {entry!r} inflates to more than the {declared} bytes "
                                            f"its directory declares; the archive is refused.")
                    raise UnsafeArchive(f"{self.name}: entry {entry!r} inflates past the "
                                        f"{limits.max_entry_uncompressed / MiB:.0f} MiB limit per entry.")
                if self.inflated > limits.max_total_uncompressed:
                    raise UnsafeArchive(f"{self.name} inflates to more than "
                                        f"{limits.max_total_uncompressed / MiB:.0f} MiB in total; the archive is "
                                        f"refused.")
                crc = zlib.crc32(out, crc)
                yield out
            if inflater is not None and inflater.eof:
                break
        if inflater is not None and not inflater.eof:
            raise CorruptFile(f"{self.name} is damaged: entry {entry!r} ends before its compressed data does.")
        if produced != declared:
            raise CorruptFile(f"{self.name} is damaged: entry {entry!r} holds {produced} bytes, not the {declared} "
                              f"its directory declares.")
        if crc != info.CRC:
            raise CorruptFile(f"{self.name} is damaged: the CRC of entry {entry!r} does not match (the file was "
                              f"altered or cut). Upload it again.")

    def read(self, entry: str, *, max_bytes: int | None = None) -> bytes:
        """The whole entry, or its first `max_bytes` bytes (reading stops there)."""
        chunks = []
        total = 0
        for chunk in self.stream(entry):
            chunks.append(chunk)
            total += len(chunk)
            if max_bytes is not None and total >= max_bytes:
                break
        data = b"".join(chunks)
        return data[:max_bytes] if max_bytes is not None else data


def declared_entry_count(handle: BinaryIO, size: int) -> int | None:
    """The entry count the end-of-central-directory record declares (ZIP64 aware), read before
    zipfile builds one object per entry; None when the record cannot be found."""
    tail_size = min(size, 65536 + 22)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count = struct.unpack_from("<H", tail, at + 10)[0]
    if count != 0xFFFF:
        return count
    locator = at - 20
    if locator < 0 or tail[locator: locator + 4] != b"PK\x06\x07":
        return None
    (record_offset,) = struct.unpack_from("<Q", tail, locator + 8)
    if record_offset + 56 > size:
        return None
    handle.seek(record_offset)
    record = handle.read(56)
    if record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack_from("<Q", record, 32)[0]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text[:120] if text else exc.__class__.__name__

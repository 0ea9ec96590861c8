"""Slicer-file readers: metadata of G-code, binary G-code, 3MF, Cura UFP and STL files.

Pure Python (no Django imports), used by catalog.services at upload time::

    info = read_sliced_file(upload, name=upload.name)
    info.format, info.sliced, info.fields["estimated_time_s"], info.thumbnails[0].png()
"""

from catalog.slicer.errors import CorruptFile, SlicerFileError, UnsafeArchive, UnsupportedFile
from catalog.slicer.reader import detect_format, read_sliced_file
from catalog.slicer.result import CORE_FIELDS, SCHEMA_FIELDS, Plate, SlicedFileInfo
from catalog.slicer.thumbnails import Thumbnail
from catalog.slicer.zipsafety import ZipLimits

__all__ = [
    "CORE_FIELDS",
    "SCHEMA_FIELDS",
    "CorruptFile",
    "Plate",
    "SlicedFileInfo",
    "SlicerFileError",
    "Thumbnail",
    "UnsafeArchive",
    "UnsupportedFile",
    "ZipLimits",
    "detect_format",
    "read_sliced_file",
]

"""Errors raised by the slicer-file readers.

Every message is written for the person who uploaded the file: it says what is wrong
with the file and what to do about it. `read_sliced_file` never lets any other
exception type escape, whatever bytes it is given.
"""

from fablab.exceptions import InvalidInput


class SlicerFileError(InvalidInput):
    """The file cannot be read as a sliced file."""

    code = "slicer-file"
    title = "Unreadable sliced file"


class UnsupportedFile(SlicerFileError):
    """The content is not G-code, binary G-code, 3MF or STL (whatever the file is called)."""

    code = "unsupported-file"
    title = "Unsupported file"


class CorruptFile(SlicerFileError):
    """The content is of a known format but damaged: truncated, bad checksum, broken archive."""

    code = "corrupt-file"
    title = "Damaged file"


class UnsafeArchive(SlicerFileError):
    """A ZIP/3MF archive that breaks the safety limits (zip bomb, path traversal, too many entries)."""

    code = "unsafe-archive"
    title = "Unsafe archive"

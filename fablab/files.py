"""File storage helpers shared by the apps."""

import math
from pathlib import Path

from django.core.files import File
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.utils.translation import gettext as _

from fablab.exceptions import NotFound

MiB = 1 << 20


def format_mib(size_bytes: int, *, up: bool = False) -> str:
    """A size in MiB, the unit of every *_MB setting: 209715200 -> "200 MiB", 1572864 -> "1.5 MiB".

    `up` rounds up to the tenth, so a file just over a limit never reads as equal to it.
    """
    tenths = size_bytes * 10 / MiB
    tenths = math.ceil(tenths) if up else round(tenths)
    return f"{tenths / 10:.1f}".removesuffix(".0") + " MiB"


def delete_stored(storage: Storage, name: str) -> None:
    """Delete a stored file, and the folders of a local storage that are left empty by it.

    A failed upload must leave nothing behind, not even the folders made for its file (object
    stores such as S3 have no folders: there only the file goes).
    """
    storage.delete(name)
    try:
        root = Path(storage.path("")).resolve()
        folder = Path(storage.path(name)).resolve().parent
    except NotImplementedError:
        return
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # succeeds only while the folder is empty
        except OSError:
            return
        folder = folder.parent


def open_stored(field: FieldFile) -> File:
    """The stored file of `field`, open for reading; NotFound (a clear 404, never a server error) when the
    storage no longer has it (deleted by hand, lost with a volume, a bucket emptied)."""
    try:
        return field.open("rb")
    except (FileNotFoundError, IsADirectoryError, ValueError):  # ValueError: the field has no file at all
        raise NotFound(_("The stored file is missing; ask the lab to restore or upload it again.")) from None

"""File storage helpers shared by the apps."""

from pathlib import Path

from django.core.files.storage import Storage


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

"""The Bambu Lab driver: one MQTT session per printer, run by the printer listener (printers.md §1).

State and commands travel over the session (`client.BambuConnection`): the listener records
what it reports and sends the commands through it, a file starts with `project_file`
(`client.command_message`). Files go over implicit FTPS (`ftps.BambuStorage`): the folders
/, /cache, /model and /timelapse are listed, uploads land in the root of the SD card.
"""

import posixpath
from typing import BinaryIO

from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput, NotFound
from printers import conf
from printers.choices import Driver
from printers.drivers.bambu import ftps
from printers.drivers.bambu.client import USERNAME, BambuConnection
from printers.drivers.base import Capability, ConnectionMode, PrinterAccess, PrinterDriver, StorageFile

MQTT_PORT = 8883
MAX_FILE_NAME = 200


def _entry(entry: ftps.StorageEntry) -> StorageFile:
    return StorageFile(path=entry.path, name=entry.name, folder=entry.folder, size_bytes=entry.size_bytes,
                       modified=entry.modified)


class BambuDriver(PrinterDriver):
    name = Driver.BAMBU.value
    label = Driver.BAMBU.label
    brand = "Bambu"
    manufacturer = "Bambu Lab"
    default_port = MQTT_PORT
    default_username = USERNAME
    mode = ConnectionMode.PUSH
    capabilities = frozenset(Capability)
    requires_serial = True  # the printer's TLS certificate is named after it
    upload_suffixes = (".3mf",)  # what project_file starts: .gcode.3mf from Bambu Studio / OrcaSlicer

    # -- the session --

    def open_connection(self, access: PrinterAccess, *, on_event, network=None) -> BambuConnection:
        return BambuConnection(
            printer_id=access.printer_id, host=access.host, port=access.port, serial=access.serial,
            access_code=access.secret, on_event=on_event,
            tls=access.port not in tuple(conf.value("BAMBU_PLAIN_MQTT_PORTS")), ca_file=conf.value("BAMBU_CA_FILE"),
            keepalive=int(conf.value("BAMBU_KEEPALIVE_SECONDS")),
            watchdog_seconds=float(conf.value("BAMBU_WATCHDOG_SECONDS")),
            backoff_min=float(conf.value("BAMBU_BACKOFF_MIN_SECONDS")),
            backoff_max=float(conf.value("BAMBU_BACKOFF_MAX_SECONDS")), network=network,
        )

    def ignored_command_error(self, *, signature_required: bool) -> str:
        hint = _("the printer reports that it requires signed commands") if signature_required \
            else _("no acknowledgement and no change on the printer")
        return _("The printer ignored the command (%(hint)s). Its firmware drops commands from third-party "
                 "software unless LAN Only mode and Developer Mode are both enabled on the printer's screen.") \
            % {"hint": hint}

    def start_params(self, *, path: str, plate: int, filament_mapping: list[int], model: str = "") -> dict:
        file_name = (path or "").strip().lstrip("/")
        if not file_name or ".." in file_name.split("/") or not file_name.lower().endswith(".3mf") \
                or len(file_name) > MAX_FILE_NAME or any(ord(ch) < 32 for ch in file_name):
            raise InvalidInput(_("Name a .3mf file on the printer's storage, e.g. benchy.gcode.3mf."))
        return {"file": file_name, "plate": int(plate), "ams_mapping": list(filament_mapping), "model": model}

    # -- files over FTPS --

    def _storage(self, access: PrinterAccess) -> ftps.BambuStorage:
        if not access.serial:
            raise InvalidInput(_("%(printer)s has no serial number; enter it (the printer's certificate is named "
                                 "after it).") % {"printer": access.name})
        return ftps.BambuStorage(
            host=access.host, port=access.files_port or int(conf.value("BAMBU_FTPS_PORT")), serial=access.serial,
            access_code=access.secret, ca_file=conf.value("BAMBU_CA_FILE"),
            timeout=float(conf.value("PRINTER_FILES_TIMEOUT_SECONDS")),
        )

    def list_files(self, access: PrinterAccess) -> list[StorageFile]:
        with self._storage(access) as storage:
            return [_entry(entry) for entry in storage.list_files(ftps.FOLDERS)]

    def download_file(self, access: PrinterAccess, *, path: str, destination_for) -> StorageFile:
        folder = posixpath.dirname(path) or "/"
        if folder not in ftps.FOLDERS:
            raise NotFound(_("%(path)s is not in a folder the app reads (%(folders)s).")
                           % {"path": path, "folders": ", ".join(ftps.FOLDERS)})
        with self._storage(access) as storage:
            entry = next((_entry(e) for e in storage.list_folder(folder) if e.path == path), None)
            if entry is None:
                raise NotFound(_("%(path)s is not on %(printer)s (any more). Refresh the file list.")
                               % {"path": path, "printer": access.name})
            destination = destination_for(entry)
            storage.download(entry.path, destination, expected_size=entry.size_bytes)
        return entry

    def upload_file(self, access: PrinterAccess, *, name: str, source: BinaryIO,
                    size: int | None = None) -> StorageFile:
        path = f"/{name}"
        with self._storage(access) as storage:
            written = storage.upload(path, source)
        return StorageFile(path=path, name=name, folder="/", size_bytes=written, modified=None)

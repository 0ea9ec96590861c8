"""Demo printers matching `manage.py simulate_printers --bambu 2 --prusa 1 --ftps-port 9990` (what
`serve --with-printers` runs), and the folder of print files they find on their storage (`simulate_printers
--files`). Each simulated Bambu printer has its own FTPS port on the one host (`Printer.files_port`), as the
print queue uploads the files it sends there."""

import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from printers import services
from printers.choices import Driver
from printers.models import Printer
from printers.simulators.bambu import fake_serial
from printers.simulators.storage import folder_name

DEMO_ACCESS_CODE = "12345678"
DEMO_PRUSA_PASSWORD = "demo-prusa"
DEMO_PRUSA_PORT = 8991
DEMO_FTPS_PORT = 9990  # the first simulated Bambu printer's SD card; the next one's is on the next port


def demo_printer_specs() -> list[dict]:
    host, port = settings.MQTT_HOST, settings.MQTT_PORT
    return [
        {"name": "Demo X1 Carbon", "driver": Driver.BAMBU, "model": "X1C", "serial": fake_serial("X1", 1),
         "host": host, "port": port, "files_port": DEMO_FTPS_PORT, "secret": DEMO_ACCESS_CODE,
         "location": "Demo bench"},
        {"name": "Demo A1", "driver": Driver.BAMBU, "model": "A1", "serial": fake_serial("A1", 2),
         "host": host, "port": port, "files_port": DEMO_FTPS_PORT + 1, "secret": DEMO_ACCESS_CODE,
         "location": "Demo bench"},
        {"name": "Demo Core One", "driver": Driver.PRUSALINK, "model": "Core One", "serial": "",
         "host": "127.0.0.1", "port": DEMO_PRUSA_PORT, "secret": DEMO_PRUSA_PASSWORD, "location": "Demo bench"},
    ]


@transaction.atomic
def load_demo_printers() -> list[Printer]:
    """Create the demo printers once; running it again changes nothing (it repairs drifted addresses)."""
    printers = []
    for spec in demo_printer_specs():
        spec = dict(spec)
        secret = spec.pop("secret")
        printer = Printer.objects.filter(name=spec["name"]).first()
        if printer is None:
            printer = services.printer_create(secret=secret, **spec)
        else:
            changed = {key: spec.get(key) for key in ("driver", "model", "serial", "host", "port", "files_port")
                       if getattr(printer, key) != spec.get(key)}
            if changed or not printer.has_credentials:
                services.printer_update(printer=printer, secret="" if printer.has_credentials else secret, **changed)
        printers.append(printer)
    return printers


def demo_files_dir() -> Path:
    """Where the demo printers' print files are kept: one folder per printer model (X1C, A1, COREONE)."""
    return Path(settings.VAR_DIR) / "demo-printer-files"


def demo_files_put(*, model: str, files: dict[str, bytes]) -> Path:
    """Make `files` ({name: bytes}) the print files of the demo printers of `model`; returns their folder.

    Files of that folder that are not in `files` are removed; each file is written whole or not at all.
    """
    names = {Path(name).name for name in files}
    if len(names) != len(files) or not all(names):
        raise ValueError("file names must be plain names, each once")
    folder = demo_files_dir() / folder_name(model)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for name, data in files.items():
        target = folder / name
        if target.is_file() and target.read_bytes() == data:
            continue
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".incoming-", delete=False) as handle:
            handle.write(data)
        Path(handle.name).replace(target)
    return folder

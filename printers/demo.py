"""Demo printers matching `manage.py simulate_printers --bambu 2 --prusa 1` (what `serve --with-printers` runs)."""

from django.conf import settings
from django.db import transaction

from printers import services
from printers.choices import Driver
from printers.models import Printer
from printers.simulators.bambu import fake_serial

DEMO_ACCESS_CODE = "12345678"
DEMO_PRUSA_PASSWORD = "demo-prusa"
DEMO_PRUSA_PORT = 8991


def demo_printer_specs() -> list[dict]:
    host, port = settings.MQTT_HOST, settings.MQTT_PORT
    return [
        {"name": "Demo X1 Carbon", "driver": Driver.BAMBU, "model": "X1C", "serial": fake_serial("X1", 1),
         "host": host, "port": port, "secret": DEMO_ACCESS_CODE, "location": "Demo bench"},
        {"name": "Demo A1", "driver": Driver.BAMBU, "model": "A1", "serial": fake_serial("A1", 2),
         "host": host, "port": port, "secret": DEMO_ACCESS_CODE, "location": "Demo bench"},
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
            changed = {key: spec[key] for key in ("driver", "model", "serial", "host", "port")
                       if getattr(printer, key) != spec[key]}
            if changed or not printer.has_credentials:
                services.printer_update(printer=printer, secret="" if printer.has_credentials else secret, **changed)
        printers.append(printer)
    return printers

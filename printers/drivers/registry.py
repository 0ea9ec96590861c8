"""The printer drivers by name: the value a Printer stores in `driver` picks the driver that serves it.

The built-in drivers are listed in BUILTIN (name → class path) and imported on first use, so that
reading this module (the Printer model does, for the field's choices) loads no network library.
Adding a brand is one new driver module (a `base.PrinterDriver` subclass) and one line in BUILTIN;
`register()` adds a driver at run time (a plugin, or a test's fake brand) and `unregister()` takes it
away again.
"""

import threading

from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput
from printers.drivers.base import Capability, ConnectionMode, PrinterDriver

BUILTIN = {
    "bambu": "printers.drivers.bambu.driver.BambuDriver",
    "prusalink": "printers.drivers.prusalink.driver.PrusaLinkDriver",
}
MAX_NAME_LENGTH = 16  # Printer.driver's max_length
REQUIRED = ("name", "label", "brand", "manufacturer", "default_port", "mode")

_drivers: dict[str, PrinterDriver] = {}
_loaded = False
_lock = threading.RLock()


def _load() -> dict[str, PrinterDriver]:
    global _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                for name, path in BUILTIN.items():
                    if name not in _drivers:
                        _drivers[name] = _checked(import_string(path)())
                _loaded = True
    return _drivers


def _checked(driver: PrinterDriver) -> PrinterDriver:
    missing = [attribute for attribute in REQUIRED if not hasattr(driver, attribute)]
    if missing:
        raise TypeError(f"{driver!r} lacks {', '.join(missing)}.")
    if not driver.name or len(driver.name) > MAX_NAME_LENGTH:
        raise ValueError(f"A driver's name has 1 to {MAX_NAME_LENGTH} characters, not {driver.name!r}.")
    if driver.mode not in ConnectionMode.__members__.values():
        raise ValueError(f"{driver!r}: mode must be one of {', '.join(ConnectionMode)}.")
    return driver


def register(driver: PrinterDriver) -> PrinterDriver:
    """Serve the printers whose `driver` is `driver.name` with `driver` (replaces one of that name)."""
    _checked(driver)
    with _lock:
        _load()
        _drivers[driver.name] = driver
    return driver


def unregister(name: str) -> None:
    with _lock:
        _load()
        _drivers.pop(name, None)


def find(name: str) -> PrinterDriver | None:
    return _load().get(name)


def get(name: str) -> PrinterDriver:
    """The driver called `name`; InvalidInput when there is none (e.g. a printer of a removed brand)."""
    driver = find(name)
    if driver is None:
        raise InvalidInput(_("No printer driver is called %(name)s.") % {"name": name})
    return driver


def for_printer(printer) -> PrinterDriver:
    """The driver of a Printer (anything with a `driver` attribute)."""
    return get(printer.driver)


def drivers() -> list[PrinterDriver]:
    return list(_load().values())


def names(*, mode: ConnectionMode | None = None, capability: Capability | None = None) -> list[str]:
    """Names of the drivers that run in `mode` and/or have `capability`."""
    return [driver.name for driver in drivers()
            if (mode is None or driver.mode == mode) and (capability is None or driver.can(capability))]


def brands(*, capability: Capability) -> str:
    """The brands that have `capability`, for a sentence ("Bambu", "Bambu and Acme")."""
    found = sorted({driver.brand for driver in drivers() if driver.can(capability)})
    if len(found) <= 1:
        return "".join(found)
    return _("%(some)s and %(last)s") % {"some": ", ".join(found[:-1]), "last": found[-1]}


def driver_choices() -> list[tuple[str, str]]:
    """The choices of `Printer.driver`: every registered driver."""
    return [(driver.name, driver.label) for driver in drivers()]

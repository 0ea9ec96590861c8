"""Factories of production's tests: catalog versions with known metadata, print jobs, and what feeds them."""

import itertools

import factory

from catalog.models import SlicedFile, VariantVersion
from catalog.tests.factories import VariantFactory, metadata
from inventory.tests.factories import FilamentFactory, spool
from printers.models import PrinterLiveState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory
from production import services
from production.models import PrintJob

_numbers = itertools.count(1)

__all__ = ["BambuPrinterFactory", "FilamentFactory", "PrinterFactory", "PrintJobFactory", "SlicedFileFactory",
           "VersionFactory", "bambu_file", "job", "live", "spool", "version"]


class SlicedFileFactory(factory.django.DjangoModelFactory):
    """A sliced file whose metadata was read (by default a one-slot PETG #FF8000 print of 12.5 g for an MK4S)."""

    class Meta:
        model = SlicedFile

    file = factory.Sequence(lambda n: f"catalog/lab/sliced/{n:02d}/part-{n}.gcode")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    size_bytes = 1000
    format = "gcode"
    original_name = factory.Sequence(lambda n: f"part-{n}.gcode")
    status = "done"
    sliced = True
    metadata = factory.LazyFunction(metadata)


class VersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VariantVersion

    variant = factory.SubFactory(VariantFactory)
    number = factory.LazyFunction(lambda: next(_numbers))
    sliced_file = factory.SubFactory(SlicedFileFactory)


class PrintJobFactory(factory.django.DjangoModelFactory):
    """A job row as it is stored; tests of the queue's rules go through services.print_job_create."""

    class Meta:
        model = PrintJob

    version = factory.SubFactory(VersionFactory)


def version(variant=None, plates: list | None = None, **fields) -> VariantVersion:
    """A version whose file states `fields` (over catalog's default metadata)."""
    sliced = SlicedFileFactory(metadata=metadata(**fields), plates=plates or [])
    return VersionFactory(sliced_file=sliced, **({"variant": variant} if variant is not None else {}))


def bambu_file(**fields) -> dict:
    """Metadata of a one-plate Bambu Studio file for an X1 Carbon (over catalog's defaults)."""
    base = {"slicer": "BambuStudio", "printer_model": "Bambu Lab X1 Carbon", "filament_type": ["PLA"],
            "filament_colour": ["#00AE42"], "filament_used_g": [6.75], "nozzle_diameter": [0.4],
            "object_height": 25.6}
    return {**base, **fields}


def job(version_=None, **kwargs) -> PrintJob:
    """A job queued through the service (and so checked)."""
    return services.print_job_create(version=version_ or version(), **kwargs)


def live(printer, **fields):
    """Set what a printer reports (nozzle type and diameter, ...)."""
    PrinterLiveState.objects.update_or_create(printer=printer, defaults=fields)
    printer.refresh_from_db()
    return printer

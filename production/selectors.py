"""Every non-trivial read of production."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from catalog import services as catalog_services
from fablab.exceptions import NotFound
from printers import files as printer_files
from printers.files import PrinterFile
from production.models import PrinterFileImport


@dataclass(frozen=True)
class PrinterFileChoice:
    """A file on a printer as staff and the lab's integrations see it: may it go into the catalog?"""

    file: PrinterFile
    importable: bool  # the printer hands it out and the catalog takes files of its kind


def printer_file_importable(printer_file: PrinterFile) -> bool:
    """Whether the catalog takes this file (by the catalog's own rule for uploads) and the printer hands it out."""
    return printer_file.downloadable and catalog_services.sliced_file_suffix(name=printer_file.name) is not None


def printer_file_list(*, printer) -> list[PrinterFileChoice]:
    """The files on the printer's storage, newest first, each saying whether it can go into the catalog.

    Asks the printer (printers.files.printer_files_list): its errors (unreachable, refused
    credentials, another transfer running) propagate.
    """
    return [PrinterFileChoice(file=f, importable=printer_file_importable(f))
            for f in printer_files.printer_files_list(printer=printer)]


def printer_file_import_list(*, printer) -> QuerySet[PrinterFileImport]:
    """The downloads from this printer into the catalog, newest first."""
    return PrinterFileImport.objects.filter(printer=printer).select_related(
        "requested_by", "version__variant").order_by("-created_at", "-id")


def printer_file_import_get(*, printer, import_id: int) -> PrinterFileImport:
    """One download from this printer (a download of another printer is not found)."""
    item = PrinterFileImport.objects.filter(printer=printer, pk=import_id).select_related(
        "version__variant", "version__sliced_file").first()
    if item is None:
        raise NotFound(_("Download %(id)s of this printer does not exist.") % {"id": import_id})
    return item

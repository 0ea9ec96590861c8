"""Extension point: pages other apps add about the files on a printer (the printer admin mounts them).

The printers app lists a printer's files and fetches their bytes (`printers.files`); what is done
with a file (moving it into the catalog) belongs to an app that may use the other apps, which the
printers app must not import. Such an app registers its pages here from its own admin module:

    register_file_urls(my_urls)   # my_urls(printer_admin) -> list of URL patterns

`PrinterAdmin.get_urls` mounts the registered patterns under /admin/printers/printer/ (before the
admin's own), each view receiving the PrinterAdmin so it checks the printer's permissions. The
printer's page offers "Files on the printer" when a page named `printers_printer_files`
(taking the printer's id) is registered.
"""

from collections.abc import Callable

from django.urls import NoReverseMatch, reverse

FILES_URL_NAME = "printers_printer_files"

_factories: list[Callable] = []


def register_file_urls(factory: Callable) -> Callable:
    """Add `factory(printer_admin) -> [URL patterns]` to the printer's admin URLs; registering twice adds once."""
    if factory not in _factories:
        _factories.append(factory)
    return factory


def file_urls(model_admin) -> list:
    """The URL patterns registered by other apps, for PrinterAdmin.get_urls (before the admin's own)."""
    return [pattern for factory in _factories for pattern in factory(model_admin)]


def files_page_url(printer_id) -> str | None:
    """The address of the files page of a printer, or None when no app serves one."""
    try:
        return reverse(f"admin:{FILES_URL_NAME}", args=[printer_id])
    except NoReverseMatch:
        return None

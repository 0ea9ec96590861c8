"""Extension points: what other apps add to a printer's admin pages (the printer admin shows it).

The printers app must not import the apps that use printers (production plans the jobs, keeps
the plate's state and moves printer files into the catalog). Such an app registers here, from its
own admin module, and the printer admin shows what it gets without knowing where it came from.

Pages about the files on a printer:

    register_file_urls(my_urls)   # my_urls(printer_admin) -> list of URL patterns

`PrinterAdmin.get_urls` mounts the registered patterns under /admin/printers/printer/ (before the
admin's own), each view receiving the PrinterAdmin so it checks the printer's permissions. The
printer's page offers "Files on the printer" when a page named `printers_printer_files`
(taking the printer's id) is registered.

Panels on the fleet cards and on the printer's page:

    register_printer_panel(my_panels)   # my_panels(request, printers) -> {printer id: PrinterPanel}

A `PrinterPanel` is a title, a few lines of text (each may link somewhere) and buttons. A button
is a POST (with the page's CSRF token and `next`, the page to return to) to the registering app's
own admin view, which checks permissions and does the work; the provider shows only the buttons
the request's user may press. Providers are asked once per page (and per refresh of the fleet)
for all the printers on it, so they can read what they need in a few queries.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.urls import NoReverseMatch, reverse

FILES_URL_NAME = "printers_printer_files"

_factories: list[Callable] = []
_panel_providers: list[Callable] = []

# How a line of a panel is stressed, and its colour (the fleet page's script has the same table).
TONE_COLOURS = {"info": "#0284c7", "success": "#16a34a", "warning": "#d97706", "danger": "#dc2626"}


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


@dataclass(frozen=True)
class PanelLine:
    """One line of a panel: `label` (e.g. "Printing"), `text` (e.g. "#12 Cube – Orange ×4"), an optional link."""

    label: str
    text: str
    url: str = ""
    tone: str = ""  # "", or a key of TONE_COLOURS
    key: str = ""  # a stable name for the line (data-line), for scripts and tests

    @property
    def colour(self) -> str:
        return TONE_COLOURS.get(self.tone, "")


@dataclass(frozen=True)
class PanelButton:
    """A button that POSTs to `url` (an admin view of the registering app, CSRF-protected)."""

    label: str
    url: str
    key: str = ""  # a stable name (data-action)
    variant: str = "primary"  # "primary" or "default"


@dataclass(frozen=True)
class PrinterPanel:
    key: str
    title: str
    lines: tuple[PanelLine, ...] = field(default_factory=tuple)
    buttons: tuple[PanelButton, ...] = field(default_factory=tuple)

    def as_json(self) -> dict:
        """JSON-ready (the fleet page draws its cards from JSON); every text a plain string."""
        data = asdict(self)
        data["title"] = str(self.title)
        data["lines"] = [{**line, "label": str(line["label"]), "text": str(line["text"]),
                          "tone": line["tone"] if line["tone"] in TONE_COLOURS else ""} for line in data["lines"]]
        data["buttons"] = [{**button, "label": str(button["label"])} for button in data["buttons"]]
        return data


def register_printer_panel(provider: Callable) -> Callable:
    """Add `provider(request, printers) -> {printer id: PrinterPanel}` (a printer left out gets no panel).

    Registering the same provider twice adds it once.
    """
    if provider not in _panel_providers:
        _panel_providers.append(provider)
    return provider


def printer_panels(request, printers) -> dict[int, list[PrinterPanel]]:
    """The panels every registered provider gives for these printers: {printer id: [panels]} (all ids present)."""
    printers = list(printers)
    panels: dict[int, list[PrinterPanel]] = {printer.pk: [] for printer in printers}
    if not printers:
        return panels
    for provider in _panel_providers:
        for printer_id, panel in (provider(request, printers) or {}).items():
            if panel is not None and printer_id in panels:
                panels[printer_id].append(panel)
    return panels

"""The extension point other apps use to add panels to the fleet cards and the printer's page.

The printers app knows nothing of the apps that register: these tests register their own provider, or
none at all (as in a project without production), in place of whatever is installed.
"""

import pytest
from django.urls import reverse

from printers import panels
from printers.panels import PanelButton, PanelLine, PrinterPanel
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def providers(monkeypatch):
    """The registered providers, emptied for the test (and restored after it)."""
    registered: list = []
    monkeypatch.setattr(panels, "_panel_providers", registered)
    return registered


@pytest.fixture
def fleet(db):
    return [BambuPrinterFactory(name="X1 <one>"), PrinterFactory(name="Core One")]


def _change(printer):
    return reverse("admin:printers_printer_change", args=[printer.pk])


def test_without_any_provider_the_pages_show_no_panels(admin_client, providers, fleet):
    cards = admin_client.get(reverse("admin:printers_fleet_json")).json()["printers"]
    assert [card["panels"] for card in cards] == [[], []]
    page = admin_client.get(_change(fleet[0]))
    assert page.status_code == 200 and "printer-extension-panels" not in page.content.decode()
    assert admin_client.get(reverse("admin:printers_fleet")).status_code == 200


def test_a_provider_is_asked_once_for_all_printers_and_its_panels_are_shown(admin_client, providers, fleet):
    calls = []

    def provider(request, printers):
        calls.append((request.user.username, sorted(p.name for p in printers)))
        return {p.pk: PrinterPanel(key="jobs", title="Jobs <b>", lines=(
            PanelLine(label="Now", text="#7 <cube>", url="/admin/somewhere/", tone="info", key="current"),
            PanelLine(label="Odd", text="tone", tone="purple"),
        ), buttons=(PanelButton(label="Plate cleared", url="/admin/plate/7/", key="plate-cleared"),))
            for p in printers if p.name == "X1 <one>"}

    panels.register_printer_panel(provider)
    panels.register_printer_panel(provider)  # twice: added once
    cards = {card["name"]: card for card in admin_client.get(reverse("admin:printers_fleet_json")).json()["printers"]}
    assert len(calls) == 1 and calls[0][1] == ["Core One", "X1 <one>"]
    assert cards["Core One"]["panels"] == []
    (panel,) = cards["X1 <one>"]["panels"]
    assert panel["title"] == "Jobs <b>" and panel["buttons"] == [
        {"label": "Plate cleared", "url": "/admin/plate/7/", "key": "plate-cleared", "variant": "primary"}]
    assert panel["lines"][0] == {"label": "Now", "text": "#7 <cube>", "url": "/admin/somewhere/", "tone": "info",
                                 "key": "current"}
    assert panel["lines"][1]["tone"] == ""  # an unknown tone is dropped

    body = admin_client.get(_change(fleet[0])).content.decode()
    assert 'data-panel="jobs"' in body and "Jobs &lt;b&gt;" in body and "#7 &lt;cube&gt;" in body
    assert '<form method="post" action="/admin/plate/7/" data-action="plate-cleared">' in body
    assert f'name="next" value="{_change(fleet[0])}"' in body and "csrfmiddlewaretoken" in body
    assert 'data-panel="jobs"' not in admin_client.get(_change(fleet[1])).content.decode()

    fleet_page = admin_client.get(reverse("admin:printers_fleet")).content.decode()
    assert 'id="fleet-csrf"' in fleet_page and "csrfmiddlewaretoken" in fleet_page
    assert "Jobs \\u003Cb\\u003E" in fleet_page  # in the cards' JSON, escaped; drawn by the script


def test_no_printers_asks_no_provider(rf, providers):
    providers.append(lambda request, printers: pytest.fail("asked for no printers"))
    assert panels.printer_panels(rf.get("/"), []) == {}

import base64
import contextlib
import csv
import datetime
import io
import re
import zlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from inventory import services
from inventory.labels import label_sheet_pdf
from inventory.models import Movement
from inventory.shopping import grouped, shopping_list, to_csv, to_xlsx
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


def used_days_ago(s, grams, days):
    movement = services.spool_use(spool=s, grams_used=grams, idempotency_key=key())
    Movement.objects.filter(pk=movement.pk).update(created_at=timezone.now() - timedelta(days=days))


@pytest.fixture
def history(settings):
    """600 g used in the last 30 days (20 g/day), 700 g in stock, lead 10 days, 7 safety days, level 500 g."""
    settings.INVENTORY_USAGE_WINDOW_DAYS = 30
    settings.INVENTORY_SAFETY_DAYS = 7
    busy = FilamentFactory(brand="Prusament", name="Galaxy Black", supplier="Prusa", lead_time_days=10,
                           reorder_threshold_g=Decimal("500"), net_weight_g=Decimal("1000"),
                           cost_per_kg=Decimal("29.99"), purchase_url="https://shop.example/galaxy")
    s = spool(busy, grams="1400")
    used_days_ago(s, 300, 3)
    used_days_ago(s, 300, 20)
    used_days_ago(s, 100, 45)  # outside the window: does not count towards the average
    quiet = FilamentFactory(supplier="Prusa", reorder_threshold_g=Decimal("100"))
    spool(quiet, grams="900")
    rings = services.product_create(sku="RING", name="Keyrings", kind="bought", supplier="Ali", lead_time_days=20,
                                    reorder_threshold_units=10, unit_cost=Decimal("0.05"))
    shelf = services.location_create(name="Shelf", kind="shelf")
    services.product_stock_change(product=rings, location=shelf, kind="received", quantity=60, idempotency_key=key())
    services.sale_record(product=rings, location=shelf, quantity=30, unit_price=2,
                         sold_on=timezone.localdate() - datetime.timedelta(days=2), channel="market",
                         idempotency_key=key())
    return busy, quiet, rings


def test_quantities_from_a_known_history(history):
    busy, _quiet, _rings = history
    rows = {row.reference: row for row in shopping_list()}
    assert set(rows) == {busy.colour_hex, "RING"}
    filament = rows[busy.colour_hex]
    # daily 20 g × (10 + 7) days + 500 g level = 840 g to have; 700 g in stock -> 140 g -> one 1 kg spool
    assert (filament.daily_use, filament.in_stock, filament.to_buy) == (Decimal("20.000"), Decimal("700.00"), 1)
    assert filament.estimated_cost == Decimal("29.99")
    rings = rows["RING"]
    # 30 sold in 30 days: 1/day × (20 + 7) + 10 = 37 to have; 30 in stock -> buy 7
    assert (rings.daily_use, rings.in_stock, rings.to_buy, rings.estimated_cost) == (
        Decimal("1.000"), Decimal("30"), 7, Decimal("0.35"))


def test_grouped_by_supplier_with_totals(history):
    groups = grouped(shopping_list())
    assert [supplier for supplier, _rows, _totals in groups] == ["Ali", "Prusa"]
    assert groups[1][2] == {"EUR": Decimal("29.99")}


def test_csv_and_xlsx_exports(history):
    rows = shopping_list()
    table = list(csv.reader(io.StringIO(to_csv(rows).decode("utf-8-sig"))))
    assert table[0][0] == "supplier" and len(table) == 3
    assert ["Prusa", str(history[0])] == table[2][:2]
    sheet = load_workbook(io.BytesIO(to_xlsx(rows))).active
    assert sheet["A1"].value == "supplier" and sheet.max_row == 3
    assert sheet["K3"].value == pytest.approx(29.99)


def test_admin_shopping_list_and_downloads(admin_client, history):
    url = reverse("admin:inventory_shopping_list")
    page = admin_client.get(url)
    assert page.status_code == 200 and b'data-supplier="Prusa"' in page.content
    assert admin_client.get(url + "?format=csv")["Content-Type"].startswith("text/csv")
    assert admin_client.get(url + "?format=xlsx").content.startswith(b"PK")


def test_label_sheet_holds_every_code():
    spools = [spool(FilamentFactory(extra_colours=["#00FF00"])) for _ in range(30)]  # two pages
    pdf = label_sheet_pdf(spools)
    assert pdf.startswith(b"%PDF")
    text = pdf.decode("latin-1")
    assert "/Count 2" in text  # 24 labels a page
    assert text.count("/Subtype /Image") == 30  # one QR code per spool
    pages = ""
    for stream in re.findall(rb"stream\r?\n(.*?)~>\s*endstream", pdf, re.S):
        # reportlab writes streams as ASCII85 over Flate.
        raw = base64.a85decode(stream.strip())
        with contextlib.suppress(zlib.error):
            pages += zlib.decompress(raw).decode("latin-1")
    assert all(f"({s.code})" in pages for s in spools)


def test_admin_print_labels_action(admin_client):
    s = spool()
    response = admin_client.post(reverse("admin:inventory_spool_changelist"),
                                 {"action": "print_labels", "_selected_action": [s.pk]})
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")

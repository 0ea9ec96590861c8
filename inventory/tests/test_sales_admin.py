"""Sales in the admin: several at once, CSV import and export (through the services), returns, velocity."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from inventory import selectors, services
from inventory.models import ProductMovement, Sale
from inventory.tests.factories import key

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:inventory_sale_import"


@pytest.fixture
def shelf():
    return services.location_create(name="Shelf", kind="shelf")


@pytest.fixture
def rings(shelf):
    product = services.product_create(sku="RING", name="Keyring rings", kind="bought")
    services.product_stock_change(product=product, location=shelf, kind="received", quantity=10,
                                  idempotency_key=key())
    return product


CSV = (
    "date,sku,channel,quantity,unit_price,currency,reference,location\n"
    "2026-01-05,RING,market,3,2.50,EUR,Stall-1,Shelf\n"
    "06.01.2026,RING,shop,2,2.90,EUR,WEB-7,\n"
)


def upload(client, text: str):
    """The first step of an import: the file is read and tried (nothing is kept); the preview or the errors."""
    return client.post(reverse(IMPORT_URL), {
        "format": "0", "resource": "0",
        "import_file": SimpleUploadedFile("sales.csv", text.encode(), content_type="text/csv"),
    })


def confirm(client, preview):
    form = preview.context["confirm_form"]
    return client.post(reverse("admin:inventory_sale_process_import"), {**form.initial, "resource": "0"})


def test_a_csv_import_previews_then_records_through_the_ledger_once(admin_client, rings, shelf):
    assert admin_client.get(reverse(IMPORT_URL)).status_code == 200
    preview = upload(admin_client, CSV)
    assert preview.status_code == 200 and not preview.context["result"].has_errors()
    assert not preview.context["result"].has_validation_errors()
    assert not Sale.objects.exists() and selectors.product_units(product=rings) == 10  # the preview keeps nothing
    done = confirm(admin_client, preview)
    assert done.status_code == 302
    sales = list(Sale.objects.order_by("sold_on"))
    assert [(s.sold_on.isoformat(), s.channel, s.quantity, str(s.unit_price), s.reference) for s in sales] == [
        ("2026-01-05", "market", 3, "2.50", "Stall-1"), ("2026-01-06", "shop", 2, "2.90", "WEB-7")]
    assert all(s.movement.kind == "sold" and s.movement.source_type == "import" for s in sales)
    assert selectors.product_units(product=rings) == 5
    confirm(admin_client, upload(admin_client, CSV))  # the same file again
    assert Sale.objects.count() == 2 and selectors.product_units(product=rings) == 5


@pytest.mark.parametrize("row,message", [
    ("2026-01-07,NOPE,market,1,2.50,EUR,,", "No product with SKU NOPE"),
    ("2026-01-07,RING,market,99,2.50,EUR,,", "has 5 units"),
    ("2026-01-07,RING,flea,1,2.50,EUR,,", "Unknown sales channel"),
    ("2026-01-07,RING,market,1.5,2.50,EUR,,", "whole number"),
    ("2026-01-07,RING,market,1,-2,EUR,,", "0 or more"),
    ("someday,RING,market,1,2.50,EUR,,", "YYYY-MM-DD"),
    ("2026-01-07,RING,market,-1,2.50,EUR,,", "name the sale it returns"),
    ("2026-01-07,RING,market,1,2.50,EUR,,Cellar", "No location named Cellar"),
    ("2026-01-07,RING,market,1,2.50,EUR,A\x00B,", "Null characters"),
])
def test_a_bad_row_is_shown_and_nothing_is_written(admin_client, rings, row, message):
    preview = upload(admin_client, CSV + row + "\n")
    assert preview.status_code == 200
    result = preview.context["result"]
    assert result.has_validation_errors() or result.has_errors()
    assert message in preview.content.decode().replace("&#x27;", "'")
    assert "confirm_form" not in preview.context or preview.context["confirm_form"] is None
    assert not Sale.objects.exists() and selectors.product_units(product=rings) == 10
    assert not ProductMovement.objects.filter(kind="sold").exists()


def test_returns_import_and_export_round_trip(admin_client, rings):
    sale = services.sale_record(product=rings, quantity=4, unit_price="2.50", sold_on=timezone.localdate(),
                                channel="market", reference="R-1", idempotency_key="till-1")
    confirm(admin_client, upload(admin_client, "date,sku,channel,quantity,unit_price,currency,reference,return_of\n"
                                                f"2026-01-08,RING,market,-1,,,,{sale.pk}\n"))
    back = Sale.objects.get(quantity=-1)
    assert back.return_of == sale and back.movement.kind == "returned" and selectors.product_units(product=rings) == 7
    exported = admin_client.post(reverse("admin:inventory_sale_export"), {"format": "0", "resource": "0"})
    assert exported.status_code == 200
    lines = exported.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "date,sku,channel,quantity,unit_price,currency,reference,location,return_of,idempotency_key"
    assert f"{timezone.localdate().isoformat()},RING,market,4,2.50,EUR,R-1,Shelf,,till-1" in lines
    assert any(line.startswith(f"2026-01-08,RING,market,-1,2.50,EUR,R-1,Shelf,{sale.pk},import:") for line in lines)
    confirm(admin_client, upload(admin_client, exported.content.decode("utf-8-sig")))  # already recorded
    assert Sale.objects.count() == 2 and selectors.product_units(product=rings) == 7


def test_several_sales_at_once_all_or_nothing(admin_client, rings, shelf):
    url = reverse("admin:inventory_sale_batch")
    page = admin_client.get(url)
    assert page.status_code == 200
    management = {"sales-TOTAL_FORMS": "3", "sales-INITIAL_FORMS": "0", "sales-MIN_NUM_FORMS": "0",
                  "sales-MAX_NUM_FORMS": "100"}
    today = timezone.localdate().isoformat()
    untouched = {"sales-2-channel": "market", "sales-2-sold_on": today}
    row = {"product": rings.pk, "quantity": "2", "unit_price": "2.50", "channel": "market", "sold_on": today,
           "location": "", "reference": ""}
    data = {"idempotency_key": "batch-1", **management, **untouched,
            **{f"sales-0-{k}": v for k, v in row.items()},
            **{f"sales-1-{k}": v for k, v in {**row, "quantity": "9"}.items()}}
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    body = refused.content.decode()
    assert "1 of 2 sales were refused" in body and "has 8 units" in body and 'data-row-error="1"' in body
    assert not Sale.objects.exists() and selectors.product_units(product=rings) == 10
    data["sales-1-quantity"] = "3"
    assert admin_client.post(url, data).status_code == 302
    assert admin_client.post(url, data).status_code == 302  # sent twice, recorded once
    assert Sale.objects.count() == 2 and selectors.product_units(product=rings) == 5
    empty = {"idempotency_key": "batch-2", **management, **untouched, "sales-0-channel": "market",
             "sales-0-sold_on": today, "sales-1-channel": "market", "sales-1-sold_on": today}
    assert "Fill in at least one sale" in admin_client.post(url, empty).content.decode()


def test_a_return_from_the_sale_page(admin_client, rings, shelf):
    sale = services.sale_record(product=rings, quantity=4, unit_price="2.50", sold_on=timezone.localdate(),
                                channel="market", idempotency_key=key())
    url = reverse("admin:inventory_sale_return", args=[sale.pk])
    assert admin_client.get(url).status_code == 200
    form = {"quantity": "5", "location": "", "returned_on": timezone.localdate().isoformat(),
            "idempotency_key": "ret-1"}
    assert "cannot be returned" in admin_client.post(url, form).content.decode()
    assert admin_client.post(url, {**form, "quantity": "1"}).status_code == 302
    assert Sale.objects.get(return_of=sale).quantity == -1 and selectors.product_units(product=rings) == 7


def test_sales_velocity_page_and_changelist(admin_client, rings):
    today = timezone.localdate()
    for weeks_ago, n in enumerate([3, 2, 1]):
        services.sale_record(product=rings, quantity=n, unit_price=2, sold_on=today - timedelta(weeks=weeks_ago),
                             channel="market", idempotency_key=key())
    page = admin_client.get(reverse("admin:inventory_sale_velocity"))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-type="line"' in body and 'data-sku="RING"' in body
    assert [v.product for v in page.context["top"]] == [rings] and page.context["top"][0].units_4 == 6
    changelist = admin_client.get(reverse("admin:inventory_sale_changelist"))
    assert changelist.status_code == 200
    assert reverse(IMPORT_URL) in changelist.content.decode()


def test_operators_may_import_and_record_several_sales(operator_client, rings):
    assert operator_client.get(reverse(IMPORT_URL)).status_code == 200
    assert operator_client.get(reverse("admin:inventory_sale_batch")).status_code == 200

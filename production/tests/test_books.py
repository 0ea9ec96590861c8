"""The books for the accountant on a known data set: rows, German and plain CSV, XLSX, totals against the
ledgers, the API's doors and refusals, and the admin's actions."""

import io
from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from fablab import exports
from fablab.tests.helpers import assert_problem
from inventory import books as inventory_books
from inventory import services as inventory_services
from inventory.choices import CONSUMING_KINDS, MovementKind
from inventory.models import Movement, Sale
from inventory.tests.factories import key
from production import books
from production.models import PrintAttempt, PrintJob, SlotAllocation
from production.tests.factories import FilamentFactory, PrinterFactory, PrintJobFactory, spool

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
JANUARY = {"start": date(2026, 1, 1), "end": date(2026, 1, 31)}
WINTER = {"start": date(2026, 1, 1), "end": date(2026, 2, 28)}


@pytest.fixture(autouse=True)
def _books_settings(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.PRODUCTION_CURRENCY = "EUR"
    settings.PRODUCTION_VAT_PERCENT = D("19")


def at(day: int, month: int = 1, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=BERLIN)


def attempt(job, number, *, finished, outcome="completed", cost=None, grams=None, printer=None):
    fields = {}
    if cost is not None:
        material, energy, machine, labour = (D(value) for value in cost)
        fields = {"cost_currency": "EUR", "cost_material": material, "cost_energy": energy, "cost_machine": machine,
                  "cost_labour": labour, "cost_total": material + energy + machine + labour}
    item = PrintAttempt.objects.create(job=job, number=number, outcome=outcome, finished_at=finished,
                                       started_at=finished, printer=printer, **fields)
    if grams is not None:
        SlotAllocation.objects.create(attempt=item, slot=1, grams_planned=D(grams), grams_booked=D(grams))
    return item


@pytest.fixture
def jobs():
    """Job 1 (business): a failed and a good attempt in January. Job 2 (private): one in January, one in
    February. Job 3: an attempt in January whose cost could not be computed."""
    printer = PrinterFactory(name="Mk4-1")
    first = PrintJobFactory(reference="ORD-1", purpose="business", status="completed", copies=1, copies_done=1)
    attempt(first, 1, finished=at(10), outcome="failed", cost=("0.30", "0.05", "0.10", "2.08"), grams="4.25",
            printer=printer)
    attempt(first, 2, finished=at(11), cost=("0.31", "0.05", "0.10", "2.08"), grams="12.5", printer=printer)
    PrintJob.objects.filter(pk=first.pk).update(cost_currency="EUR", cost_material=D("0.61"), cost_total=D("5.07"))
    second = PrintJobFactory(reference="=cmd", purpose="private", status="completed")
    attempt(second, 1, finished=at(20), cost=("0.50", "0.10", "0.15", "0.25"), grams="20", printer=printer)
    attempt(second, 2, finished=at(2, month=2), cost=("1.00", "0", "0", "0"))
    third = PrintJobFactory(reference="ORD-3", status="failed")
    attempt(third, 1, finished=at(15), outcome="failed")
    PrintJobFactory(reference="never sent")
    return first, second, third


def test_print_jobs_rows_split_by_period_and_totals_equal_the_attempts(jobs):
    first, second, third = jobs
    table = books.print_jobs_table(**JANUARY)
    rows = {row["job"]: row for row in table.rows}
    assert list(rows) == [first.pk, third.pk, second.pk]  # by the day of their last attempt in the period
    one = rows[first.pk]
    assert (one["date"], one["reference"], one["purpose"], one["status"], one["printer"]) == \
        (date(2026, 1, 11), "ORD-1", "Business", "Completed", "Mk4-1")
    assert (one["attempts"], one["uncosted"], one["grams"]) == (2, 0, D("16.750"))
    assert (one["cost_material"], one["cost_energy"], one["cost_machine"], one["cost_labour"], one["cost_total"]) \
        == (D("0.61"), D("0.10"), D("0.20"), D("4.16"), D("5.07"))
    assert one["cost_total"] == PrintJob.objects.get(pk=first.pk).cost_total  # all its attempts are in January
    assert rows[second.pk]["purpose"] == "Private" and rows[second.pk]["cost_total"] == D("1.00")
    assert (rows[third.pk]["uncosted"], rows[third.pk]["cost_total"]) == (1, None)

    [total] = table.totals
    in_january = PrintAttempt.objects.filter(finished_at__gte=at(1, hour=0), finished_at__lt=at(1, 2, hour=0))
    assert total["cost_total"] == in_january.aggregate(total=Sum("cost_total"))["total"] == D("6.07")
    for part in ("cost_material", "cost_energy", "cost_machine", "cost_labour"):
        assert total[part] == sum(row[part] or 0 for row in table.rows)
    assert (total["attempts"], total["uncosted"], total["grams"]) == (4, 1, D("36.750"))
    assert books.print_jobs_table(**WINTER).totals[0]["cost_total"] == \
        PrintAttempt.objects.aggregate(total=Sum("cost_total"))["total"] == D("7.07")


def test_print_jobs_in_german_csv(jobs):
    first = jobs[0]
    with translation.override("de"):
        body = exports.render(books.print_jobs_table(**JANUARY), "csv-de").decode("utf-8")
    assert body.startswith("\ufeff")
    lines = body[1:].split("\r\n")
    fields = lines[1].split(";")
    with translation.override("de"):
        purpose, status = translation.gettext("Business"), translation.gettext("Completed")
    assert fields[:5] == ["11.01.2026", str(first.pk), "ORD-1", first.version.variant.sku,
                          f"{first.version.variant.model.name} {first.version.variant.name}"]
    assert fields[5:] == [purpose, status, "Mk4-1", "1", "1", "2", "0", "16,750", "0,61", "0,10", "0,20", "4,16",
                          "5,07", "EUR"]
    assert lines[-2].endswith(";4;1;36,750;1,11;0,20;0,35;4,41;6,07;EUR")
    assert lines[-1] == ""
    assert f";{jobs[1].pk};'=cmd;" in body  # a reference that looks like a formula is not one in the sheet


def test_material_per_month_equals_the_ledgers_consumption():
    pla = spool(FilamentFactory(brand="Prusament", material="PLA", name="Galaxy Black", cost_per_kg=D("25.00")))
    petg = spool(FilamentFactory(brand="Prusament", material="PETG", name="Orange", cost_per_kg=D("30.00")))

    def book(item, grams, kind, when):
        movement = inventory_services.spool_use(spool=item, grams_used=grams, kind=kind, idempotency_key=key())
        Movement.objects.filter(pk=movement.pk).update(created_at=when)

    book(pla, "12.5", MovementKind.USED, at(5))
    book(pla, "7.25", MovementKind.FAILED_PRINT, at(31, hour=23))  # 22:00 UTC: still January in Berlin
    book(pla, "100", MovementKind.WASTE, at(1, month=2, hour=0))  # 23:00 UTC on 31 January: February here
    book(petg, "20.125", MovementKind.USED, at(14, month=2))
    book(petg, "50", MovementKind.USED, at(1, month=3))  # after the period
    inventory_services.spool_adjust(spool=petg, remaining_grams="900", idempotency_key=key(), reason="count")

    table = inventory_books.material_table(**WINTER)
    assert [(row["month"], row["filament"], row["printed_g"], row["failed_g"], row["waste_g"], row["grams"],
             row["cost"]) for row in table.rows] == [
        (date(2026, 1, 1), "Prusament PLA Galaxy Black", D("12.500"), D("7.250"), D("0.000"), D("19.750"),
         D("0.49")),
        (date(2026, 2, 1), "Prusament PETG Orange", D("20.125"), D("0.000"), D("0.000"), D("20.125"), D("0.60")),
        (date(2026, 2, 1), "Prusament PLA Galaxy Black", D("0.000"), D("0.000"), D("100.000"), D("100.000"),
         D("2.50")),
    ]
    [total] = table.totals
    ledger = Movement.objects.filter(kind__in=CONSUMING_KINDS, created_at__gte=at(1, hour=0),
                                     created_at__lt=at(1, month=3, hour=0)).aggregate(total=Sum("delta_grams"))
    assert total["grams"] == -ledger["total"] == D("139.875")
    assert (total["cost"], total["currency"]) == (D("3.59"), "EUR")
    body = exports.render(table, "csv").decode()
    assert body.splitlines()[1] == "2026-01,PLA,Prusament PLA Galaxy Black,12.500,7.250,0.000,19.750,25.00,0.49,EUR"
    assert body.splitlines()[-1] == ",Total,,32.625,7.250,100.000,139.875,,3.59,EUR"


@pytest.fixture
def sales():
    shelf = inventory_services.location_create(name="Shelf", kind="shelf")
    rings = inventory_services.product_create(sku="RING", name="Keyring", kind="bought")
    hook = inventory_services.product_create(sku="HOOK", name="Wall hook", kind="bought")
    for product in (rings, hook):
        inventory_services.product_stock_change(product=product, location=shelf, kind="received", quantity=20,
                                                idempotency_key=key())

    def sell(product, quantity, price, day, reference=""):
        return inventory_services.sale_record(product=product, quantity=quantity, unit_price=price, sold_on=day,
                                              channel="shop", reference=reference, idempotency_key=key())

    first = sell(rings, 3, "2.50", date(2026, 1, 5), "WEB-1")
    back = inventory_services.sale_return(sale=first, quantity=1, idempotency_key=key(),
                                          returned_on=date(2026, 1, 10))
    sell(hook, 1, "11.90", date(2026, 1, 20), "WEB-2")
    sell(hook, 2, "11.90", date(2026, 2, 1), "WEB-3")  # after January
    return first, back


def test_sales_with_net_vat_and_gross_equal_the_sales(sales):
    first, back = sales
    table = inventory_books.sales_table(**JANUARY)
    assert [(row["date"], row["sku"], row["quantity"], row["net"], row["vat"], row["gross"])
            for row in table.rows] == [
        (date(2026, 1, 5), "RING", 3, D("6.30"), D("1.20"), D("7.50")),
        (date(2026, 1, 10), "RING", -1, D("-2.10"), D("-0.40"), D("-2.50")),
        (date(2026, 1, 20), "HOOK", 1, D("10.00"), D("1.90"), D("11.90")),
    ]
    [total] = table.totals
    in_january = Sale.objects.filter(sold_on__range=(date(2026, 1, 1), date(2026, 1, 31)))
    assert total["gross"] == sum(sale.total for sale in in_january) == D("16.90")
    assert total["quantity"] == in_january.aggregate(units=Sum("quantity"))["units"] == 3
    assert (total["net"], total["vat"], total["net"] + total["vat"]) == (D("14.20"), D("2.70"), D("16.90"))
    with translation.override("de"):
        body = exports.render(table, "csv-de")
    lines = body.decode("utf-8").split("\r\n")
    assert lines[2] == f"10.01.2026;{back.pk};{first.pk};WEB-1;RING;Keyring;{lines[2].split(';')[6]};-1;2,50;-2,10;" \
                       "19,00;-0,40;-2,50;EUR"
    assert lines[4].endswith(";3;;14,20;;2,70;16,90;EUR")


def test_xlsx_books_hold_numbers_and_dates(sales):
    body = exports.render(inventory_books.sales_table(**JANUARY), "xlsx")
    sheet = load_workbook(io.BytesIO(body)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][0] == datetime(2026, 1, 5) and sheet["A2"].is_date
    assert rows[1][7:13] == (3, 2.5, 6.3, 19, 1.2, 7.5)
    assert rows[-1][3] == "Total" and rows[-1][9] == 14.2 and rows[-1][12] == 16.9


# --- the API -------------------------------------------------------------------------------------


def test_the_lab_downloads_each_book(lab_api, jobs, sales):
    plain = lab_api.get("/api/v1/production/books/sales?from=2026-01-01&to=2026-01-31&format=csv")
    assert plain.status_code == 200, plain.content
    assert plain["Content-Type"] == "text/csv; charset=utf-8"
    assert plain["Content-Disposition"] == 'attachment; filename="sales-2026-01-01-2026-01-31.csv"'
    assert plain.content.startswith(b"Date,Sale,") and b"7.50,EUR" in plain.content

    german = lab_api.get("/api/v1/production/books/sales?from=2026-01-01&to=2026-01-31",
                         headers={"Accept-Language": "de"})
    assert german.status_code == 200 and german.content.startswith("\ufeff".encode())
    assert b"05.01.2026;" in german.content and b";7,50;EUR" in german.content

    forced = lab_api.get("/api/v1/production/books/print-jobs?from=2026-01-01&to=2026-01-31&format=csv-de")
    assert forced.status_code == 200 and forced.content.startswith("\ufeff".encode())
    assert forced.content.decode("utf-8").split("\r\n")[-2].endswith(";6,07;EUR")

    sheet = lab_api.get("/api/v1/production/books/material?from=2026-01-01&to=2026-01-31&format=xlsx")
    assert sheet.status_code == 200 and sheet["Content-Type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(sheet.content)).active["B2"].value == "Total"  # no filament used: zeros


@pytest.mark.parametrize(("query", "detail"), [
    ("from=2026-02-01&to=2026-01-01", "starts"),
    ("from=2026-01-01&to=2026-01-31&format=pdf", "Unknown export format"),
    ("from=2000-01-01&to=2026-01-01", "longer than"),
    ("from=2026-13-01&to=2026-01-31", ""),
    ("to=2026-01-31", ""),
    ("from=2026-01-01&to=99999-01-01", ""),
    ("from=9999-12-30&to=9999-12-31", "outside the calendar"),
    ("from=0001-01-01&to=0001-01-02", "outside the calendar"),
])
def test_bad_periods_and_formats_are_refused_clearly(lab_api, query, detail):
    for book in books.BOOKS:
        assert_problem(lab_api.get(f"/api/v1/production/books/{book}?{query}"), 422, detail_contains=detail)


def test_only_the_labs_keys_get_the_books(api, lab_read_key):
    from fablab.tests.helpers import ApiClient

    assert_problem(api.get("/api/v1/production/books/sales?from=2026-01-01&to=2026-01-31"), 403)
    assert_problem(ApiClient().get("/api/v1/production/books/sales?from=2026-01-01&to=2026-01-31"), 401)
    reader = ApiClient(lab_read_key)
    assert reader.get("/api/v1/production/books/sales?from=2026-01-01&to=2026-01-31").status_code == 200


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_exports_the_selected_rows(admin_client, jobs, sales):
    first, second, _third = jobs
    response = admin_client.post(reverse("admin:production_printjob_changelist"),
                                 {"action": "books_print_jobs_csv", "_selected_action": [first.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.content.decode("utf-8").split("\r\n")
    assert len(lines) == 4 and lines[-2].endswith(",2,0,16.750,0.61,0.10,0.20,4.16,5.07,EUR")

    sold = admin_client.post(reverse("admin:inventory_sale_changelist"),
                             {"action": "books_sales_xlsx", "_selected_action": list(
                                 Sale.objects.filter(sold_on__month=1).values_list("pk", flat=True))})
    sheet = load_workbook(io.BytesIO(sold.content)).active
    assert [row[12] for row in sheet.iter_rows(min_row=2, values_only=True)] == [7.5, -2.5, 11.9, 16.9]

    used = spool(FilamentFactory(cost_per_kg=D("20")))
    inventory_services.spool_use(spool=used, grams_used="50", idempotency_key=key())
    ledger = admin_client.post(reverse("admin:inventory_movement_changelist"),
                               {"action": "books_material_csv",
                                "_selected_action": list(Movement.objects.values_list("pk", flat=True))})
    assert ledger.status_code == 200
    assert ledger.content.decode().split("\r\n")[-2] == ",Total,,50.000,0.000,0.000,50.000,,1.00,EUR"


def test_a_german_staff_member_gets_german_csv(admin_client, sales):
    response = admin_client.post(reverse("admin:inventory_sale_changelist"),
                                 {"action": "books_sales_csv", "_selected_action": [sales[0].pk]},
                                 headers={"Accept-Language": "de"})
    assert response.content.startswith("\ufeff".encode()) and b"05.01.2026;" in response.content


def test_the_admin_exports_a_range_of_days_of_the_ledger_and_the_sales(admin_client, sales):
    used = spool(FilamentFactory(cost_per_kg=D("20")))
    for grams, when in (("30", at(31, hour=23)), ("70", at(1, month=2, hour=0))):  # 31 January and 1 February
        movement = inventory_services.spool_use(spool=used, grams_used=grams, idempotency_key=key())
        Movement.objects.filter(pk=movement.pk).update(created_at=when)
    url = reverse("admin:inventory_movement_changelist") + "?created_at_from=2026-01-01&created_at_to=2026-01-31"
    assert admin_client.get(url).status_code == 200
    everything = {"select_across": "1", "index": "0",
                  "_selected_action": list(Movement.objects.values_list("pk", flat=True))}
    response = admin_client.post(url, {"action": "books_material_csv", **everything})
    assert response.content.decode().split("\r\n")[-2] == ",Total,,30.000,0.000,0.000,30.000,,0.60,EUR"

    url = reverse("admin:inventory_sale_changelist") + "?sold_on_from=2026-01-06&sold_on_to=2026-01-31"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"action": "books_sales_csv", "select_across": "1", "index": "0",
                                       "_selected_action": list(Sale.objects.values_list("pk", flat=True))})
    lines = response.content.decode().split("\r\n")
    assert [line.split(",")[0] for line in lines[1:-1]] == ["2026-01-10", "2026-01-20", ""]
    assert lines[-2].endswith(",0,,7.90,,1.50,9.40,EUR")


def test_an_export_over_ten_years_is_an_admin_message(admin_client, sales):
    Sale.objects.filter(pk=sales[0].pk).update(sold_on=date(2001, 1, 1))
    response = admin_client.post(reverse("admin:inventory_sale_changelist"),
                                 {"action": "books_sales_csv", "_selected_action": list(
                                     Sale.objects.values_list("pk", flat=True))}, follow=True)
    assert response.status_code == 200 and "longer than 3660 days" in response.content.decode()

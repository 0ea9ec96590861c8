"""The files for the accountant, byte for byte: German CSV, plain CSV and XLSX cells of the right types."""

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from fablab import exports
from fablab.exceptions import InvalidInput
from fablab.exports import AMOUNT, DATE, GRAMS, INTEGER, MONTH, Column, Table


def small_table() -> Table:
    columns = [Column("day", "Day", DATE), Column("item", "Item"), Column("units", "Units", INTEGER),
               Column("grams", "Grams", GRAMS), Column("amount", "Amount", AMOUNT), Column("month", "Month", MONTH)]
    rows = [
        {"day": date(2026, 1, 5), "item": "Hook; black", "units": 3, "grams": Decimal("12.5"),
         "amount": Decimal("1234.5"), "month": date(2026, 1, 1)},
        {"day": date(2026, 2, 28), "item": "=SUM(A1)", "units": -1, "grams": Decimal("0.0004"),
         "amount": Decimal("-0.001"), "month": date(2026, 2, 1)},
    ]
    totals = [{"item": "Total", "units": 2, "grams": Decimal("12.5004"), "amount": Decimal("1234.499")}]
    return Table(name="small", columns=columns, rows=rows, totals=totals)


def test_german_csv_has_a_bom_semicolons_a_decimal_comma_and_german_dates():
    body = exports.render(small_table(), exports.CSV_DE)
    assert body == (
        "\ufeffDay;Item;Units;Grams;Amount;Month\r\n"
        '05.01.2026;"Hook; black";3;12,500;1234,50;01.2026\r\n'
        "28.02.2026;'=SUM(A1);-1;0,000;0,00;02.2026\r\n"
        ";Total;2;12,500;1234,50;\r\n"
    ).encode("utf-8")


def test_plain_csv_has_commas_a_decimal_point_and_iso_dates():
    body = exports.render(small_table(), exports.CSV)
    assert body == (
        b"Day,Item,Units,Grams,Amount,Month\r\n"
        b"2026-01-05,Hook; black,3,12.500,1234.50,2026-01\r\n"
        b"2026-02-28,'=SUM(A1),-1,0.000,0.00,2026-02\r\n"
        b",Total,2,12.500,1234.50,\r\n"
    )
    assert not body.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(("language", "date_format"), [("en", "yyyy-mm-dd"), ("de", "dd.mm.yyyy")])
def test_xlsx_cells_are_numbers_and_dates_with_their_formats(language, date_format):
    sheet = load_workbook(io.BytesIO(exports.render(small_table(), exports.XLSX, language=language))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Day", "Item", "Units", "Grams", "Amount", "Month")
    assert rows[1] == (datetime(2026, 1, 5), "Hook; black", 3, 12.5, 1234.5, datetime(2026, 1, 1))
    assert rows[2][1] == "'=SUM(A1)" and rows[2][2] == -1
    assert rows[3] == (None, "Total", 2, 12.5004, 1234.499, None)
    assert sheet["A2"].is_date and sheet["A2"].number_format == date_format
    assert sheet["C2"].data_type == "n" and sheet["C2"].number_format == "0"
    assert sheet["D2"].number_format == "#,##0.000" and sheet["E2"].number_format == "#,##0.00"
    assert sheet["B4"].font.b and sheet.freeze_panes == "A2"


def test_the_format_follows_the_language_and_unknown_ones_are_refused():
    assert exports.resolve_format("csv", language="de") == "csv-de"
    assert exports.resolve_format("csv", language="en") == "csv"
    assert exports.resolve_format(None, language="en-gb") == "csv"
    assert exports.resolve_format("XLSX", language="de") == "xlsx"
    assert exports.resolve_format("csv-de", language="en") == "csv-de"
    with pytest.raises(InvalidInput, match="Unknown export format 'pdf'"):
        exports.resolve_format("pdf", language="en")


def test_periods_that_run_backwards_or_span_more_than_ten_years_are_refused():
    assert exports.period_check(date(2026, 1, 1), date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 1, 1))
    with pytest.raises(InvalidInput, match="starts"):
        exports.period_check(date(2026, 2, 1), date(2026, 1, 31))
    with pytest.raises(InvalidInput, match="longer than 3660 days"):
        exports.period_check(date(2010, 1, 1), date(2026, 1, 1))


def test_totals_are_summed_per_currency_and_an_empty_table_still_has_one():
    rows = [{"currency": "EUR", "amount": Decimal("1.10")}, {"currency": "CHF", "amount": Decimal("2")},
            {"currency": "EUR", "amount": Decimal("0.90")}]
    totals = exports.totals_by_currency(rows, label_key="item", sum_keys=("amount",), currency="EUR")
    assert [(t["currency"], t["amount"]) for t in totals] == [("EUR", Decimal("2.00")), ("CHF", Decimal("2"))]
    assert exports.totals_by_currency([], label_key="item", sum_keys=("amount",), currency="EUR") == \
        [{"item": "Total", "currency": "EUR", "amount": 0}]

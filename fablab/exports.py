"""Tables written as files for people outside fablab (an accountant, a spreadsheet): CSV and XLSX.

A `Table` is columns (each with a kind: text, integer, amount, grams, percent, date, month) and rows of plain
Python values (str, int, Decimal, date); its last rows are totals. `render(table, fmt)` writes it:

- `csv-de`: the German convention, what Excel opens by double-click on a German system: semicolons
  between fields, a decimal comma, dates as dd.mm.yyyy, UTF-8 with a byte order mark;
- `csv`: comma, decimal point, ISO dates (yyyy-mm-dd), UTF-8 without a byte order mark;
- `xlsx`: numbers as number cells and dates as date cells, each with its number format.

`resolve_format("csv", language="de")` is `csv-de`: a German-speaking user gets German CSV without asking.
Text that a spreadsheet would take for a formula (it starts with =, +, -, @ or a control character) is
written with a leading apostrophe, so a reference typed by someone else never runs in the accountant's sheet.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput

CSV, CSV_DE, XLSX = "csv", "csv-de", "xlsx"
FORMATS = (CSV, CSV_DE, XLSX)
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    CSV_DE: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# Column kinds: how many decimal places a number shows, and the XLSX number format.
TEXT, INTEGER, AMOUNT, GRAMS, PERCENT, DATE, MONTH = "text", "integer", "amount", "grams", "percent", "date", "month"
PLACES = {INTEGER: 0, AMOUNT: 2, GRAMS: 3, PERCENT: 2}
XLSX_FORMATS = {INTEGER: "0", AMOUNT: "#,##0.00", GRAMS: "#,##0.000", PERCENT: "0.00", DATE: "yyyy-mm-dd",
                MONTH: "yyyy-mm"}
XLSX_FORMATS_DE = {**XLSX_FORMATS, DATE: "dd.mm.yyyy", MONTH: "mm.yyyy"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = TEXT


@dataclass
class Table:
    """`name`: the file's name without its suffix (and the sheet's title); `totals`: rows written last."""

    name: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    totals: list[dict] = field(default_factory=list)

    def all_rows(self) -> Iterable[dict]:
        yield from self.rows
        yield from self.totals


def totals_by_currency(rows: list[dict], *, label_key: str, sum_keys: tuple[str, ...], currency: str) -> list[dict]:
    """Totals rows for `rows`: one per currency (in order of appearance), `label_key` saying "Total" and each of
    `sum_keys` the sum of the rows' values; a row of zeros in `currency` when there are no rows."""
    totals: dict[str, dict] = {}
    for row in rows or [{"currency": currency}]:
        total = totals.setdefault(row["currency"], {label_key: _("Total"), "currency": row["currency"],
                                                    **dict.fromkeys(sum_keys, 0)})
        for key in sum_keys:
            total[key] += row.get(key) or 0
    return list(totals.values())


def resolve_format(fmt: str | None, *, language: str | None) -> str:
    """The format asked for, `csv` made `csv-de` for a German-speaking user; InvalidInput for an unknown one."""
    fmt = (fmt or CSV).strip().lower()
    if fmt not in FORMATS:
        raise InvalidInput(_("Unknown export format %(format)r: use one of %(formats)s.")
                           % {"format": fmt[:20], "formats": ", ".join(FORMATS)})
    if fmt == CSV and (language or "").lower().startswith("de"):
        return CSV_DE
    return fmt


def _number_text(value, places: int, *, german: bool) -> str:
    if not isinstance(value, Decimal):
        value = Decimal(value)
    text = f"{value:.{places}f}"
    if text.startswith("-") and Decimal(text) == 0:
        text = text[1:]  # no "-0.00"
    return text.replace(".", ",") if german else text


def _safe_text(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def cell_text(value, kind: str, *, german: bool) -> str:
    """One field of a CSV file."""
    if value is None or value == "":
        return ""
    if kind in PLACES:
        return _number_text(value, PLACES[kind], german=german)
    if kind == DATE:
        return value.strftime("%d.%m.%Y") if german else value.isoformat()
    if kind == MONTH:
        return value.strftime("%m.%Y") if german else value.strftime("%Y-%m")
    return _safe_text(value)


def render_csv(table: Table, *, german: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if german else ",", lineterminator="\r\n")
    writer.writerow([_safe_text(column.title) for column in table.columns])
    for row in table.all_rows():
        writer.writerow([cell_text(row.get(column.key), column.kind, german=german) for column in table.columns])
    text = buffer.getvalue()
    return ("\ufeff" + text).encode("utf-8") if german else text.encode("utf-8")


def render_xlsx(table: Table, *, german: bool) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    formats = XLSX_FORMATS_DE if german else XLSX_FORMATS
    book = Workbook()
    sheet = book.active
    sheet.title = table.name[:31]
    sheet.append([column.title for column in table.columns])
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    totals_from = len(table.rows) + 2
    for row in table.all_rows():
        values = []
        for column in table.columns:
            value = row.get(column.key)
            if value == "":
                value = None
            elif column.kind == TEXT and value is not None:
                value = _safe_text(value)
            elif column.kind in (DATE, MONTH) and isinstance(value, datetime):
                value = value.date()
            values.append(value)
        sheet.append(values)
    for index, column in enumerate(table.columns, start=1):
        number_format = formats.get(column.kind)
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            if number_format and cell.value is not None:
                cell.number_format = number_format
            if cell.row >= totals_from:
                cell.font = bold
        sheet.column_dimensions[get_column_letter(index)].width = max(12, min(40, len(column.title) + 2))
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(table: Table, fmt: str, *, language: str | None = None) -> bytes:
    """The table as a file; an XLSX file for a German-speaking user shows its dates as dd.mm.yyyy."""
    if fmt == XLSX:
        return render_xlsx(table, german=(language or "").lower().startswith("de"))
    if fmt in (CSV, CSV_DE):
        return render_csv(table, german=fmt == CSV_DE)
    raise InvalidInput(_("Unknown export format %(format)r.") % {"format": fmt})


def file_name(table: Table, fmt: str) -> str:
    return f"{table.name}.{'xlsx' if fmt == XLSX else 'csv'}"


def response(table: Table, fmt: str, *, language: str | None = None) -> HttpResponse:
    """The table as a file download."""
    body = render(table, fmt, language=language)
    result = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    result["Content-Disposition"] = f'attachment; filename="{file_name(table, fmt)}"'
    return result


# --- periods -------------------------------------------------------------------------------------

MAX_PERIOD_DAYS = 3660  # ten years: more is a typing error, and a file nobody could open
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)  # beyond, a day's bounds overflow the calendar


def period_check(start: date, end: date) -> tuple[date, date]:
    """A period of whole days, `start` to `end` inclusive; InvalidInput when it runs backwards or is too long."""
    for day in (start, end):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidInput(_("%(day)s is outside the calendar of the books (%(first)s to %(last)s).")
                               % {"day": day.isoformat(), "first": FIRST_DAY.isoformat(),
                                  "last": LAST_DAY.isoformat()})
    if start > end:
        raise InvalidInput(_("The period starts (%(start)s) after it ends (%(end)s).")
                           % {"start": start.isoformat(), "end": end.isoformat()})
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(_("The period is longer than %(days)s days; export it in parts.")
                           % {"days": MAX_PERIOD_DAYS})
    return start, end


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The moments a period of days covers in the current time zone: [start's midnight, the midnight after end)."""
    start, end = period_check(start, end)
    zone = timezone.get_current_timezone()
    begin = datetime.combine(start, time.min).replace(tzinfo=zone)
    after = datetime.combine(end + timedelta(days=1), time.min).replace(tzinfo=zone)
    return begin, after

"""Tables as files people open in a spreadsheet: CSV that Excel reads as UTF-8, XLSX with number formats, and
the Content-Disposition that names them. Columns are `app.analysis.report.Column`s (key, label, kind); a row is
a mapping from column key to value, in the same units the pages use (money in whole fen, shares 0..1)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from litestar import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from app.analysis.report import Column
from app.i18n import SHANGHAI, local

# Litestar adds "; charset=utf-8" to a text type itself: naming it here too sent it twice.
CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The file types a table downloads as, by extension.
TYPES = {"csv": CSV_TYPE, "xlsx": XLSX_TYPE}

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection); a leading apostrophe makes
# it plain text again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_NUMBER_FORMATS = {
    "count": "#,##0",
    "money": "#,##0.00",
    "percent": "0.0%",
    "days": "#,##0",
    "rating": "0.0",
    "date": "yyyy-mm-dd",
}
# Excel's sheet names: at most 31 characters, none of these.
_SHEET_NAME_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _day(value: date | datetime) -> date:
    return local(value).date() if isinstance(value, datetime) else value


def _csv_cell(value: Any, kind: str) -> str | int:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if kind == "money":
        return str(_yuan(value))
    if kind == "percent":
        # "12.5%" is what Excel itself writes and reads back as the number 0.125.
        return f"{value * 100:.1f}%"
    if kind == "rating":
        return f"{value:.2f}"
    if kind == "days":
        return f"{value:.0f}"
    if kind == "date" and isinstance(value, date | datetime):
        return _day(value).isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    return neutralise(str(value))


def csv_bytes(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """UTF-8 with a byte order mark (without it Excel reads the Chinese as the local code page), CRLF lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(column.label) for column in columns])
    for row in rows:
        writer.writerow([_csv_cell(row.get(column.key), column.kind) for column in columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if kind == "money":
        return _yuan(value)
    if kind == "date" and isinstance(value, date | datetime):
        return _day(value)
    return value


def _width(value: Any) -> int:
    """Roughly how many character widths a value takes: a Chinese character is two."""
    text = value if isinstance(value, str) else f"{value:,}" if isinstance(value, int | float | Decimal) else str(value)
    return sum(2 if ord(char) > 0x2E7F else 1 for char in text)


def xlsx_bytes(title: str, columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One sheet named after the table: a bold header row, then the rows with number formats by column kind."""
    values = [[_xlsx_value(row.get(column.key), column.kind) for column in columns] for row in rows]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(title.translate(_SHEET_NAME_FORBIDDEN).strip() or "Sheet")[:31])
    for index, column in enumerate(columns):
        widest = max([_width(column.label), *(_width(line[index]) for line in values if line[index] is not None)])
        sheet.column_dimensions[get_column_letter(index + 1)].width = min(max(widest + 2, 10), 60)
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", column.label))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for line in values:
        cells = []
        for column, value in zip(columns, line, strict=True):
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                # openpyxl would store text starting with "=" as a formula; a string cell is never run.
                cell.data_type = "s"
            elif column.kind in _NUMBER_FORMATS:
                cell.number_format = _NUMBER_FORMATS[column.kind]
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def attachment(filename: str, fallback: str) -> str:
    """A Content-Disposition naming the download: `filename*` (RFC 5987) carries the Chinese name, `filename`
    an ASCII one for clients that do not read it."""
    ascii_name = fallback.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download(
    extension: str,
    title: str,
    ascii_name: str,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    *,
    sheet: str = "",
) -> Response[bytes]:
    """A table as a file to download (`extension` one of TYPES), named after its title and today's date in
    Beijing time, with `kehu-<ascii_name>-<date>` for clients that cannot read a Chinese file name. An XLSX
    sheet is named `sheet`, else after the title."""
    content = csv_bytes(columns, rows) if extension == "csv" else xlsx_bytes(sheet or title, columns, rows)
    today = datetime.now(SHANGHAI).date().isoformat()
    return Response(
        content=content,
        media_type=TYPES[extension],
        headers={
            "Content-Disposition": attachment(
                f"{title}-{today}.{extension}", fallback=f"kehu-{ascii_name}-{today}.{extension}"
            )
        },
    )

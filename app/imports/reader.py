"""Reading an uploaded spreadsheet safely: CSV in whatever encoding Chinese offices save it, or XLSX; the header
row and the data rows as text. Anything that is not a customer list Kehu can read is refused with a message
(FileRejected) before a single row is imported."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import sys
import zipfile
import zlib
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import islice
from typing import IO, Any
from xml.etree import ElementTree

from charset_normalizer import from_bytes

from app.customers.normalize import clean_text
from app.i18n import _, current_language, set_language

# What one upload may hold. 100,000 rows of a customer list are about 15 MB as CSV and 8 MB as XLSX.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
# Excel's own limit for a cell; a longer one is no hand-made customer list.
MAX_CELL = 32_767
# An XLSX is a zip of XML: real workbooks unpack to 5–20 times their size. A zip bomb unpacks to thousands.
MAX_UNPACKED_BYTES = 600 * 1024 * 1024
MAX_PACK_RATIO = 200
# Merged cells are filled from their top-left cell; more merged cells than this is no customer list either.
MAX_MERGED_CELLS = 1_000_000
# How far down the header row may be: offices put a title and a date above it.
HEADER_SEARCH_ROWS = 10

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


class FileRejected(ValueError):
    """The file cannot be imported; the message says why, in the user's words."""


@dataclass
class Sheet:
    """A spreadsheet's header and data rows as text; `rows` holds (row number as the spreadsheet shows it,
    cells), empty rows left out."""

    file_type: str
    headers: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    encoding: str = ""


def file_type_of(content: bytes) -> str:
    """'xlsx' or 'csv' by what the file is, whatever its name says; FileRejected for anything else."""
    if not content.strip():
        raise FileRejected(_("The file is empty."))
    if content.startswith(_OLE_MAGIC):
        raise FileRejected(_("This is an old Excel file (.xls). Save it as .xlsx or CSV in Excel and upload it again."))
    if content.startswith(_ZIP_MAGIC):
        return "xlsx"
    head = content[:65536]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRejected(_("This is not a spreadsheet. Upload an Excel file (.xlsx) or a CSV file."))
    return "csv"


def read(content: bytes, *, limit: int | None = None) -> Sheet:
    """The sheet of an uploaded file: all of it, or the header and the first `limit` data rows (the preview)."""
    kind, encoding, rows = _rows_of(content)
    table = _table(rows)
    _number, headers = next(table)
    return Sheet(kind, headers, list(table if limit is None else islice(table, limit)), encoding)


# A file this large is read in a process of its own while the rows read so far are checked: reading 100,000
# rows takes some 2 s as CSV and 8-10 s as XLSX, checking them 5-6 s, and side by side they use both cores. A
# smaller file is read in a thread: starting a process costs more than reading it.
READ_APART_FROM = 1024 * 1024
_ROWS_PER_PART = 2000


@dataclass
class Reading:
    """A sheet being read: its type, header and encoding, and its data rows in parts as they are read."""

    file_type: str
    headers: list[str]
    encoding: str
    parts: AsyncIterator[list[tuple[int, list[str]]]]


@contextlib.asynccontextmanager
async def reading(content: bytes) -> AsyncIterator[Reading]:
    """The whole sheet of an uploaded file, its rows coming while they are read. FileRejected from the header
    or from any later part: nothing read may be written before the last part has come."""
    if len(content) < READ_APART_FROM:
        sheet = await asyncio.to_thread(read, content)

        async def whole() -> AsyncIterator[list[tuple[int, list[str]]]]:
            yield sheet.rows

        yield Reading(sheet.file_type, sheet.headers, sheet.encoding, whole())
        return
    # A fresh interpreter running this module, not multiprocessing: that imports the parent's main module again
    # in the child, and a main module without a __main__ guard (a script, a test runner) hangs it.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, current_language(), stdin=PIPE, stdout=PIPE
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(content)
        await process.stdin.drain()
        process.stdin.close()
        file_type, encoding, headers = await _received(process.stdout)
        yield Reading(file_type, headers, encoding, _parts(process.stdout))
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


async def _received(stream: asyncio.StreamReader) -> Any:
    """The next message of the reading process: its length on a line, then the message as JSON."""
    try:
        size = int(await stream.readuntil(b"\n"))
        kind, payload = json.loads(await stream.readexactly(size))
    except (asyncio.IncompleteReadError, ValueError):
        raise RuntimeError("the process reading the file stopped without a word") from None
    if kind == "rejected":
        raise FileRejected(payload)
    return payload


async def _parts(stream: asyncio.StreamReader) -> AsyncIterator[list[tuple[int, list[str]]]]:
    while part := await _received(stream):
        yield part


def _read_apart(language: str) -> None:
    """The reading process: the file from standard input; on standard output the sheet's type, encoding and
    header, its rows in parts, then an empty part — or the reason the file is refused."""
    set_language(language)
    output = sys.stdout.buffer

    def send(kind: str, payload: object) -> None:
        message = json.dumps([kind, payload], ensure_ascii=False).encode()
        output.write(b"%d\n" % len(message) + message)
        output.flush()

    try:
        file_type, encoding, rows = _rows_of(sys.stdin.buffer.read())
        table = _table(rows)
        _number, headers = next(table)
        send("sheet", [file_type, encoding, headers])
        while part := list(islice(table, _ROWS_PER_PART)):
            send("rows", part)
        send("rows", [])
    except FileRejected as error:
        send("rejected", str(error))


def _rows_of(content: bytes) -> tuple[str, str, Iterator[tuple[int, list[str]]]]:
    """The file's type, its encoding (CSV) and its rows as they stand in the file."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise FileRejected(_("The file is larger than %(n)s MB.", n=MAX_UPLOAD_BYTES // (1024 * 1024)))
    kind = file_type_of(content)
    if kind == "xlsx":
        return kind, "", _xlsx_rows(content)
    text, encoding = decode(content)
    return kind, encoding, _csv_rows(text)


def decode(content: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in: UTF-8 (with or without a byte order mark), UTF-16 with
    one, GB18030 (which includes GBK and GB2312, what Excel on a Chinese Windows saves), else what
    charset-normalizer recognises."""
    utf16 = content.startswith((b"\xff\xfe", b"\xfe\xff"))
    candidates = ["utf-16"] if utf16 else ["utf-8-sig", "gb18030"]
    for encoding in candidates:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        # GB18030 decodes nearly any bytes; characters from the private use area betray another encoding (Big5
        # from Taiwan or Hong Kong, for one), which charset-normalizer then recognises.
        if encoding != "gb18030" or len(_PRIVATE_USE.findall(text[:100_000])) <= 2:
            return text, encoding
    guess = from_bytes(content[:1_000_000]).best()
    if guess is not None:
        try:
            return content.decode(guess.encoding), guess.encoding
        except (UnicodeDecodeError, LookupError):
            pass
    raise FileRejected(_("The file's characters could not be read. Save it as CSV UTF-8 or as .xlsx in Excel."))


def _table(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """The header (as row 0, its names cleaned), then the data rows; FileRejected, when it comes to that, for a
    file that is no customer list."""
    header_found = False
    # Rows above the header: the header is the first row naming two columns or more among the first few (a
    # title and a date often stand above it); a file of one column has its header in its first row.
    above: list[tuple[int, list[str]]] = []
    count = 0
    for number, cells in rows:
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if len(cells) > MAX_COLUMNS:
            raise FileRejected(
                _("The file has more than %(n)s columns; a customer list needs far fewer.", n=MAX_COLUMNS)
            )
        if not header_found:
            if len({cell for cell in cells if cell}) < 2 and len(above) < HEADER_SEARCH_ROWS:
                above.append((number, cells))
                continue
            header_found = True
            if len({cell for cell in cells if cell}) < 2:
                yield 0, _header(above[0][1])
                count = len(above)
                yield from [*above[1:], (number, cells)]
            else:
                yield 0, _header(cells)
            continue
        if count >= MAX_ROWS:
            raise FileRejected(_("The file has more than %(n)s rows. Split it into smaller files.", n=f"{MAX_ROWS:,}"))
        count += 1
        yield number, cells
    if not header_found:
        if not above:
            raise FileRejected(_("The file is empty."))
        yield 0, _header(above[0][1])
        count = len(above) - 1
        yield from above[1:]
    if not count:
        raise FileRejected(_("The file has a header row but no customers under it."))


def _header(cells: list[str]) -> list[str]:
    return [clean_text(cell) or _("Column %(n)s", n=index + 1) for index, cell in enumerate(cells)]


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        # A mobile number typed into Excel is stored as the number 13812345678.0.
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return _string_text(str(value))


def _string_text(text: str) -> str:
    """_cell_text of a string: most cells of a file are, and the type checks cost more than the rest."""
    if len(text) > MAX_CELL:
        raise FileRejected(
            _("A cell holds more than %(n)s characters; this is not a customer list.", n=f"{MAX_CELL:,}")
        )
    return text.strip()


# ---------------------------------------------------------------------------------------------------------
# CSV


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    sample = text[:20_000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    previous = csv.field_size_limit()
    csv.field_size_limit(MAX_CELL)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), dialect)
        try:
            for cells in reader:
                yield reader.line_num, [_cell_text(cell) for cell in cells]
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise FileRejected(
                    _("A cell holds more than %(n)s characters; this is not a customer list.", n=f"{MAX_CELL:,}")
                ) from None
            raise FileRejected(_("The CSV file is malformed near line %(n)s.", n=reader.line_num)) from None
    finally:
        csv.field_size_limit(previous)


# ---------------------------------------------------------------------------------------------------------
# XLSX


def check_zip(archive: zipfile.ZipFile) -> None:
    """Refuse a zip bomb before anything is unpacked: the sizes a zip declares bound what zipfile will
    unpack (it stops at the declared size), so the declared sizes and ratios are what to check."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        packed = max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and info.file_size / packed > MAX_PACK_RATIO:
            raise FileRejected(_("The file unpacks to far more than it holds (a zip bomb?); it is not imported."))
    if total > MAX_UNPACKED_BYTES:
        raise FileRejected(_("The file unpacks to far more than it holds (a zip bomb?); it is not imported."))
    if "xl/workbook.xml" not in archive.namelist():
        raise FileRejected(_("This is not an Excel workbook. Upload an Excel file (.xlsx) or a CSV file."))


def _merged_ranges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """The merged cells of a sheet as (first row, first column, last row, last column), read from its XML."""
    ranges = []
    cells = 0
    tail = b""
    with archive.open(sheet_path) as stream:
        while chunk := stream.read(1024 * 1024):
            block = tail + chunk
            # Most sheets merge nothing: the search for a tag at every "<" of the cells is skipped then.
            matches = _MERGE.finditer(block) if b"mergeCell" in block else ()
            for match in matches:
                first_col, first_row, last_col, last_row = match.groups()
                merged = (
                    int(first_row),
                    _column_of(first_col.decode()),
                    int(last_row),
                    _column_of(last_col.decode()),
                )
                cells += (merged[2] - merged[0] + 1) * (merged[3] - merged[1] + 1)
                if cells > MAX_MERGED_CELLS:
                    raise FileRejected(_("The file has too many merged cells to be a customer list."))
                ranges.append(merged)
            # A tag cut in two by the chunk boundary is found whole in the next block.
            cut = block.rfind(b"<")
            tail = block[cut:] if cut >= 0 and len(block) - cut < 200 else b""
    return sorted(set(ranges))


# The namespaces of a workbook's parts and of the attribute naming a sheet's part, by the workbook's namespace:
# Excel's usual ("transitional") files, and those it saves as "Strict Open XML Spreadsheet".
_NAMESPACES = {
    "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}": (
        "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    ),
    "{http://purl.oclc.org/ooxml/spreadsheetml/main}": "{http://purl.oclc.org/ooxml/officeDocument/relationships}id",
}


def _damaged() -> FileRejected:
    return FileRejected(_("The Excel file is damaged or not a workbook; open and save it in Excel."))


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[str]]]:
    """The rows of the sheet Excel opens on, streamed from its XML.

    openpyxl reads a cell in about 0.15 ms (a 100,000-row list in minutes), so the sheet's XML is read here
    directly: cell values as text, shared strings looked up, formulas kept as formulas (starting with "=") so
    they are refused row by row rather than imported as a result Excel may not have saved. Numbers are written
    as Excel stores them (a date is its serial number: no customer field holds a date)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError):
        raise FileRejected(_("This is not a spreadsheet. Upload an Excel file (.xlsx) or a CSV file.")) from None
    with archive:
        check_zip(archive)
        try:
            sheet_path, main = _active_sheet(archive)
            shared = _shared_strings(archive, main)
            merged = _merged_ranges(archive, sheet_path)
            yield from _filled(_sheet_rows(archive, sheet_path, shared, main), merged)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            KeyError,
            IndexError,
            ValueError,
            ElementTree.ParseError,
        ) as error:
            if isinstance(error, FileRejected):
                raise
            raise _damaged() from None


def _xml(archive: zipfile.ZipFile, name: str) -> IO[bytes]:
    """A part of the workbook to parse. A document type declaration, which could declare entities, stands before
    the root element and has no place in a workbook: a part starting with one is refused. (Expat, from 2.4 on,
    also bounds entity expansion, and ElementTree resolves no external entities.)"""
    with archive.open(name) as stream:
        head = stream.read(4096)
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise _damaged()
    return archive.open(name)


def _active_sheet(archive: zipfile.ZipFile) -> tuple[str, str]:
    """The part of the sheet Excel opens on, and the namespace of the workbook's parts."""
    with _xml(archive, "xl/workbook.xml") as stream:
        workbook = ElementTree.parse(stream).getroot()  # noqa: S314 - see _xml
    main = workbook.tag.removesuffix("workbook")
    if main not in _NAMESPACES:
        raise _damaged()
    sheets = workbook.findall(f"{main}sheets/{main}sheet")
    view = workbook.find(f"{main}bookViews/{main}workbookView")
    active = int(view.get("activeTab", "0")) if view is not None else 0
    relation = sheets[active if active < len(sheets) else 0].get(_NAMESPACES[main])
    with _xml(archive, "xl/_rels/workbook.xml.rels") as stream:
        relations = ElementTree.parse(stream).getroot()  # noqa: S314 - see _xml
    target = next(item.get("Target", "") for item in relations if item.get("Id") == relation)
    path = target.lstrip("/") if target.startswith("/") else "xl/" + target.removeprefix("./")
    return path, main


def _shared_strings(archive: zipfile.ZipFile, main: str) -> list[str]:
    """The workbook's shared strings; the phonetic guides (rPh) of East Asian text are not part of a value."""
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    strings: list[str] = []
    with _xml(archive, "xl/sharedStrings.xml") as stream:
        for _event, element in ElementTree.iterparse(stream):  # noqa: S314 - see _xml
            if element.tag == f"{main}si":
                strings.append(_text_of(element, main))
                element.clear()
    return strings


def _text_of(element: ElementTree.Element, main: str) -> str:
    text = element.find(f"{main}t")
    if text is not None:
        return _string_text(text.text or "")
    return _string_text("".join(run.findtext(f"{main}t") or "" for run in element.findall(f"{main}r")))


_DIGITS = "0123456789"


def _column_of(reference: str) -> int:
    index = 0
    for char in reference:
        if "A" <= char <= "Z":
            index = index * 26 + ord(char) - 64
        else:
            break
    return index


def _sheet_rows(archive: zipfile.ZipFile, path: str, shared: list[str], main: str) -> Iterator[tuple[int, list[str]]]:
    cell_tag, row_tag = f"{main}c", f"{main}row"
    value_tag, formula_tag, inline_tag = f"{main}v", f"{main}f", f"{main}is"
    number = 0
    cells: list[str] = []
    # Column numbers by the letters of a cell reference ("AB" of "AB12"): a sheet has a few dozen columns.
    columns: dict[str, int] = {}
    with _xml(archive, path) as stream:
        for _event, element in ElementTree.iterparse(stream):  # noqa: S314 - see _xml
            tag = element.tag
            if tag == cell_tag:
                reference = element.get("r")
                if reference:
                    letters = reference.rstrip(_DIGITS)
                    column = columns.get(letters) or columns.setdefault(letters, _column_of(letters))
                else:
                    column = len(cells) + 1
                formula = element.find(formula_tag)
                kind = element.get("t", "n")
                if formula is not None:
                    value = "=" + (formula.text or "")
                elif kind == "s":
                    raw = element.findtext(value_tag)
                    value = shared[int(raw)] if raw else ""
                elif kind == "inlineStr":
                    inline = element.find(inline_tag)
                    value = _text_of(inline, main) if inline is not None else ""
                elif kind == "b":
                    value = "TRUE" if element.findtext(value_tag) == "1" else "FALSE"
                elif kind in ("str", "e", "d"):
                    value = _cell_text(element.findtext(value_tag) or "")
                else:
                    raw = element.findtext(value_tag)
                    value = _cell_text(float(raw)) if raw else ""
                element.clear()
                if column > MAX_COLUMNS:
                    if value:
                        raise FileRejected(
                            _("The file has more than %(n)s columns; a customer list needs far fewer.", n=MAX_COLUMNS)
                        )
                    continue
                if column > len(cells):
                    cells.extend([""] * (column - len(cells) - 1))
                    cells.append(value)
                else:
                    cells[column - 1] = value
            elif tag == row_tag:
                number = int(element.get("r") or number + 1)
                yield number, cells
                cells = []
                element.clear()


def _filled(
    rows: Iterator[tuple[int, list[str]]], merged: list[tuple[int, int, int, int]]
) -> Iterator[tuple[int, list[str]]]:
    """Every cell of a merged range gets the range's value, as the person who merged them meant: a province
    merged over ten rows is the province of all ten."""
    if not merged:
        yield from rows
        return
    pending = list(merged)
    active: list[tuple[tuple[int, int, int, int], str]] = []
    for number, cells in rows:
        while pending and pending[0][0] <= number:
            ranged = pending.pop(0)
            if ranged[0] == number:
                index = ranged[1] - 1
                active.append((ranged, cells[index] if index < len(cells) else ""))
        active = [(ranged, value) for ranged, value in active if ranged[2] >= number]
        for (_first_row, first_col, _last_row, last_col), value in active:
            if last_col > len(cells):
                cells.extend([""] * (min(last_col, MAX_COLUMNS + 1) - len(cells)))
            for index in range(first_col - 1, min(last_col, len(cells))):
                cells[index] = value
        yield number, cells


if __name__ == "__main__":
    _read_apart(sys.argv[1])

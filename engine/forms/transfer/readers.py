"""Tabular readers: a CSV or XLSX file as a header row and a stream of data rows, flat in memory.

A reader never guesses silently: a byte sequence that does not decode, or a file that is not a
spreadsheet, is a `SubmissionError` at `file`; a row with the wrong number of cells is kept and
flagged, so the import can report it with the other row errors.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from engine.errors import FieldError, SubmissionError

Encoding = Literal["utf-8", "gb18030", "auto"]
SNIFF_BYTES = 64 * 1024
XLSX_CELL_LIMIT = 32_767  # Excel's limit; openpyxl cuts longer text to it when reading
MAX_CELL_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: its 1-based row number in the file (the header is row 1) and its cells."""

    number: int
    cells: tuple[Any, ...]
    error: FieldError | None = None


@dataclass(slots=True)
class Table:
    """A header and the data rows that follow it; `rows` can be iterated once."""

    headers: tuple[str, ...]
    rows: Iterator[SourceRow]
    close: Any = None


def file_error(code: str, message: str) -> SubmissionError:
    """The error for a file that cannot be read at all."""
    return SubmissionError([FieldError(loc="file", code=code, message=message)], message)


# --- CSV ---------------------------------------------------------------------------------------


def _choose_encoding(stream: IO[bytes], encoding: Encoding) -> str:
    if encoding != "auto":
        return encoding
    sample = stream.read(SNIFF_BYTES)
    stream.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _decoded_lines(stream: IO[bytes], encoding: str) -> Iterator[str]:
    """Lines of text; a byte that does not decode stops the read with its line and offset.

    Splitting on b"\\n" is safe for UTF-8 and GB18030: neither uses 0x0A inside a character.
    """
    offset = 0
    for number, raw in enumerate(stream, start=1):
        chunk = raw[3:] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        start = offset + len(raw) - len(chunk)
        try:
            yield chunk.decode(encoding)
        except UnicodeDecodeError as err:
            raise file_error(
                "transfer.bad-encoding",
                f"line {number}, byte {start + err.start}: not valid {encoding} "
                f"(choose another encoding, e.g. gb18030)",
            ) from err
        offset += len(raw)


def read_csv(stream: IO[bytes], *, encoding: Encoding = "utf-8", delimiter: str = ",") -> Table:
    """Open a CSV stream (binary, seekable when `encoding` is "auto")."""
    # The limit is process-wide; the default (128 KiB) would refuse a 1 MB notes cell.
    if csv.field_size_limit() < MAX_CELL_CHARS:
        csv.field_size_limit(MAX_CELL_CHARS)
    lines = _decoded_lines(stream, _choose_encoding(stream, encoding))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise file_error("transfer.bad-csv", f"line {reader.line_num}: {err}") from err
    if header is None:
        raise file_error("transfer.empty-file", "the file has no header row")
    headers = _clean_headers(header)
    return Table(headers=headers, rows=_csv_rows(reader, len(headers)))


def _csv_rows(reader: Any, width: int) -> Iterator[SourceRow]:
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise file_error("transfer.bad-csv", f"line {reader.line_num}: {err}") from err
        number += 1
        if not any(cell.strip() for cell in cells):
            continue
        yield _sized_row(number, cells, width)


def _sized_row(number: int, cells: Iterable[Any], width: int) -> SourceRow:
    """The row cut to `width` cells; missing cells or extra non-empty ones flag it as ragged."""
    values = list(cells)
    extra = [v for v in values[width:] if v not in (None, "")]
    if len(values) < width or extra:
        message = f"row {number} has {len(values)} cells, the header has {width}"
        error = FieldError(loc=f"rows/{number}", code="transfer.ragged-row", message=message)
        return SourceRow(number=number, cells=tuple(values[:width]), error=error)
    return SourceRow(number=number, cells=tuple(values[:width]))


def _clean_headers(cells: Iterable[Any]) -> tuple[str, ...]:
    """Header texts, stripped; blank (or merged-away) cells become "#<column number>"."""
    out: list[str] = []
    for index, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell).strip()
        out.append(text or f"#{index}")
    while out and out[-1] == f"#{len(out)}":
        out.pop()
    return tuple(out)


# --- XLSX --------------------------------------------------------------------------------------


def read_xlsx(path_or_stream: Any, *, sheet: str | None = None) -> Table:
    """Open a workbook in openpyxl's read-only mode (rows are streamed from the zip)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path_or_stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as err:
        raise file_error("transfer.not-a-spreadsheet", "the file is not an XLSX workbook") from err
    try:
        worksheet = _pick_sheet(book, sheet)
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None)
    except Exception:
        book.close()
        raise
    if header is None:
        book.close()
        raise file_error("transfer.empty-file", "the sheet has no header row")
    headers = _clean_headers(header)
    return Table(headers=headers, rows=_xlsx_rows(rows, len(headers)), close=book.close)


def _pick_sheet(book: Any, sheet: str | None) -> Any:
    if sheet is None:
        return book.worksheets[0]
    if sheet not in book.sheetnames:
        raise file_error("transfer.unknown-sheet", f"the workbook has no sheet {sheet!r}")
    return book[sheet]


def _xlsx_rows(rows: Iterator[tuple[Any, ...]], width: int) -> Iterator[SourceRow]:
    for number, cells in enumerate(rows, start=2):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        padded = tuple(cells) + (None,) * max(0, width - len(cells))
        if any(isinstance(c, str) and len(c) >= XLSX_CELL_LIMIT for c in padded):
            message = f"a cell of row {number} reaches the XLSX limit of {XLSX_CELL_LIMIT} "
            message += "characters and may have been cut: import this data from CSV"
            error = FieldError(loc=f"rows/{number}", code="transfer.cell-too-long", message=message)
            yield SourceRow(number=number, cells=padded[:width], error=error)
            continue
        yield _sized_row(number, padded, width)


def excel_serial_to_datetime(serial: float) -> dt.datetime:
    """An Excel date serial (1900 system) as a naive datetime."""
    from openpyxl.utils.datetime import from_excel

    value = from_excel(serial)
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time())


def open_table(
    stream: IO[bytes],
    *,
    file_format: Literal["csv", "xlsx"],
    encoding: Encoding = "utf-8",
    sheet: str | None = None,
    delimiter: str = ",",
) -> Table:
    """Open `stream` with the reader for `file_format`."""
    if file_format == "xlsx":
        return read_xlsx(stream, sheet=sheet)
    return read_csv(stream, encoding=encoding, delimiter=delimiter)

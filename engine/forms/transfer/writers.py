"""Tabular writers: rows of cells as CSV text chunks or an XLSX file, in flat memory.

CSV formula injection: a text cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return
or `'` is written with one extra leading `'`, so spreadsheet programs show it as text instead of
running it. `unescape_text` undoes exactly that on import, so the value round-trips verbatim. In
XLSX every text cell is stored with the string type, so nothing is ever a formula there.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMULA_STARTS = frozenset("=+-@\t\r'")
CSV_BOM = "\ufeff"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FLUSH_ROWS = 500


def escape_text(text: str) -> str:
    """`text` made safe to open in a spreadsheet program (see the module docstring)."""
    return "'" + text if text and text[0] in FORMULA_STARTS else text


def unescape_text(text: str) -> str:
    """The inverse of `escape_text` for cells read from a CSV this engine wrote."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_STARTS:
        return text[1:]
    return text


def _csv_cell(cell: Any) -> Any:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return escape_text(cell)
    return cell


def write_csv(rows: Iterable[Iterable[Any]], *, bom: bool = True) -> Iterator[bytes]:
    """UTF-8 CSV chunks (with a BOM so that Excel reads Chinese text), about FLUSH_ROWS each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write(CSV_BOM)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(cell) for cell in row])
        if count % FLUSH_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail.encode("utf-8")


def write_xlsx(
    rows: Iterable[Iterable[Any]], *, sheet_title: str = "records", header_rows: int = 1
) -> IO[bytes]:
    """An XLSX workbook (openpyxl write-only mode) in a spooled temp file, rewound.

    The caller closes the returned file; it spills to disk above a few megabytes.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=sheet_title[:31] or "records")
    bold = Font(bold=True)
    for index, row in enumerate(rows):
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            if index < header_rows:
                cell.font = bold
            cells.append(cell)
        sheet.append(cells)
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    book.save(out)
    out.seek(0)
    return out


def iter_file(handle: IO[bytes], *, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """Chunks of an open file, closing it at the end."""
    try:
        while chunk := handle.read(chunk_size):
            yield chunk
    finally:
        handle.close()


__all__ = [
    "CSV_MEDIA_TYPE",
    "XLSX_MEDIA_TYPE",
    "escape_text",
    "iter_file",
    "unescape_text",
    "write_csv",
    "write_xlsx",
]

"""Writers: CSV formula injection is escaped and undone on import; XLSX text is never a formula."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from engine.forms.transfer import (
    escape_text,
    read_csv,
    read_xlsx,
    unescape_text,
    write_csv,
    write_xlsx,
)

HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTab",
    "'quoted",
    "''=double",
    "'",
    "Robert'); DROP TABLE students;--",
    "<script>alert(1)</script>",
    "plain",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_round_trip(text: str) -> None:
    escaped = escape_text(text)
    assert escaped[:1] not in "=+-@\t\r" or escaped == text == ""
    assert unescape_text(escaped) == text


def test_csv_chunks_are_readable_back() -> None:
    rows = [["Title", "Qty"]] + [[text, index] for index, text in enumerate(HOSTILE)] * 300
    data = b"".join(write_csv(iter(rows)))
    assert data.startswith("\ufeff".encode())
    table = read_csv(io.BytesIO(data))
    back = [[unescape_text(r.cells[0]), int(r.cells[1])] for r in table.rows]
    assert back == rows[1:]
    assert b"\r\n=HYPERLINK" not in data and b",=HYPERLINK" not in data


def test_xlsx_stores_text_as_text() -> None:
    handle = write_xlsx(iter([["Title"], *([text] for text in HOSTILE)]))
    raw = handle.read()
    book = load_workbook(io.BytesIO(raw))
    sheet = book.active
    assert [c.data_type for c in sheet["A"]][1:] == ["s"] * len(HOSTILE)
    table = read_xlsx(io.BytesIO(raw))
    assert [r.cells[0] for r in table.rows] == [t for t in HOSTILE if t.strip()]


def test_xlsx_cells_at_the_excel_limit_are_flagged_not_cut_silently() -> None:
    handle = write_xlsx(iter([["Notes"], ["长" * 1_000_000], ["长" * 32_766]]))
    rows = list(read_xlsx(io.BytesIO(handle.read())).rows)
    assert [r.error.code if r.error else None for r in rows] == ["transfer.cell-too-long", None]

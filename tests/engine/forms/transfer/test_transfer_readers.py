"""CSV and XLSX readers: encodings, ragged rows, files that are not spreadsheets, big cells."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from openpyxl import Workbook

from engine.errors import SubmissionError
from engine.forms.transfer import read_csv, read_xlsx


def _codes(err: pytest.ExceptionInfo[SubmissionError]) -> list[tuple[str, str]]:
    return [(e.code, e.loc) for e in err.value.errors]


def test_csv_utf8_with_bom_and_quoted_newlines() -> None:
    data = '\ufeffTitle,Notes\r\nA,"two\nlines"\r\n\r\nB,x\r\n'.encode()
    table = read_csv(io.BytesIO(data))
    assert table.headers == ("Title", "Notes")
    rows = list(table.rows)
    assert [(r.number, r.cells) for r in rows] == [(2, ("A", "two\nlines")), (4, ("B", "x"))]


def test_csv_gb18030_when_asked_or_detected() -> None:
    data = "标题,备注\n工单一,测试\n".encode("gb18030")
    for encoding in ("gb18030", "auto"):
        table = read_csv(io.BytesIO(data), encoding=encoding)  # type: ignore[arg-type]
        assert table.headers == ("标题", "备注")
        assert [r.cells for r in table.rows] == [("工单一", "测试")]


def test_broken_encoding_names_line_and_byte() -> None:
    data = b"Title\nok\n" + b"bad \xff\xfe here\n"
    table = read_csv(io.BytesIO(data))
    with pytest.raises(SubmissionError) as err:
        list(table.rows)
    assert _codes(err) == [("transfer.bad-encoding", "file")]
    assert "line 3, byte 13" in err.value.errors[0].message


def test_gb18030_read_as_utf8_is_an_error_not_mojibake() -> None:
    with pytest.raises(SubmissionError) as err:
        read_csv(io.BytesIO("标题\n".encode("gb18030")))
    assert _codes(err) == [("transfer.bad-encoding", "file")]


def test_ragged_rows_are_flagged_one_by_one() -> None:
    data = b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,2,3,,\n"
    rows = list(read_csv(io.BytesIO(data)).rows)
    assert [(r.number, r.error.code if r.error else None) for r in rows] == [
        (2, None),
        (3, "transfer.ragged-row"),
        (4, "transfer.ragged-row"),
        (5, None),
    ]


def test_empty_file() -> None:
    with pytest.raises(SubmissionError) as err:
        read_csv(io.BytesIO(b""))
    assert _codes(err) == [("transfer.empty-file", "file")]


def test_one_megabyte_cell() -> None:
    big = "x" * 1_000_000
    rows = list(read_csv(io.BytesIO(f"Notes\n{big}\n".encode())).rows)
    assert rows[0].cells == (big,)


def _xlsx(rows: list[list[object]], merge: str | None = None) -> io.BytesIO:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return out


def test_xlsx_rows_dates_and_blank_headers() -> None:
    stream = _xlsx(
        [["Title", None, "Due", "Extra"], ["A", None, dt.date(2026, 1, 2), "e"], [None] * 4],
        merge="A1:B1",
    )
    table = read_xlsx(stream)
    assert table.headers == ("Title", "#2", "Due", "Extra")
    rows = list(table.rows)
    assert len(rows) == 1
    assert rows[0].cells[2] == dt.datetime(2026, 1, 2)
    table.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"Title\nthis is a text file renamed to .xlsx\n",
        b"",
        pytest.param(None, id="zip-that-is-not-xlsx"),
    ],
)
def test_not_a_spreadsheet(payload: bytes | None) -> None:
    if payload is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
        payload = buffer.getvalue()
    with pytest.raises(SubmissionError) as err:
        read_xlsx(io.BytesIO(payload))
    assert _codes(err) == [("transfer.not-a-spreadsheet", "file")]


def test_unknown_sheet() -> None:
    with pytest.raises(SubmissionError) as err:
        read_xlsx(_xlsx([["Title"]]), sheet="Nope")
    assert _codes(err) == [("transfer.unknown-sheet", "file")]

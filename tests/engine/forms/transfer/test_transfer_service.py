"""Imports and exports through the service on real tables (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import sqlalchemy as sa
from openpyxl import load_workbook

from engine.forms.transfer_service import ImportOptions, TransferService

HEADER = "Title,Quantity,Level,Tags,Urgent,Due date,Customer,Notes\n"
INJECTION = "'; DROP TABLE xfer__order; -- <script>alert(1)</script> \" OR 1=1"


def _import(service: TransferService, text: str | bytes, form: str = "order", **kw: Any) -> Any:
    data = text.encode() if isinstance(text, str) else text
    options = ImportOptions(**kw)
    return service.import_file(
        app="xfer",
        form=form,
        upload=io.BytesIO(data),
        file_name=f"upload.{options.file_format}",
        options=options,
        actor=None,
    )


def _rows(engine: sa.Engine, form: str = "order") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT * FROM xfer__{form} ORDER BY id"))
        return [dict(row._mapping) for row in result]


def _customers(service: TransferService) -> None:
    job = _import(service, "Name\nAcme\nGlobex\nGlobex\n", form="customer")
    assert job.status == "done"


def _report(service: TransferService, job_id: int) -> list[list[str]]:
    export = service.error_report(app="xfer", form="order", job_id=job_id, file_format="csv")
    import csv

    text = b"".join(export.chunks).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_valid_rows_writes_the_good_ones_and_reports_the_rest(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    _customers(transfer_service)
    text = HEADER + (
        "First,3,High,Alpha; Beta,yes,2026-01-31,Acme,\n"
        "Second,-1,Low,,no,,,\n"  # qty below min
        "Third,2,Nope,,,,,\n"  # unknown option
        "Fourth,1,低,甲,是,2026/02/01,Nobody,\n"  # unknown customer
        "Fifth,1\n"  # ragged
        "Sixth,1,,,,,Globex,\n"  # two customers have that title
        "Seventh,5,,,,,1,x\n"
    )
    job = _import(transfer_service, text, mode="valid_rows")
    assert (job.status, job.rows_read, job.rows_written, job.rows_failed) == ("done", 7, 2, 5)
    rows = _rows(migrated_engine)
    assert [(r["title"], r["number"]) for r in rows] == [
        ("First", "OR-0001"),
        ("Seventh", "OR-0002"),
    ]
    assert rows[0]["level"] == "high" and rows[0]["urgent"] in (True, 1)
    report = _report(transfer_service, job.id)
    assert report[0] == [*HEADER.strip().split(","), "#row", "#error_codes", "#errors"]
    by_row = {line[-3]: line[-2] for line in report[1:]}
    assert by_row == {
        "3": "submission.out-of-range",
        "4": "submission.unknown-option",
        "5": "transfer.unknown-reference",
        "6": "transfer.ragged-row",
        "7": "transfer.ambiguous-reference",
    }
    assert report[1][:2] == ["Second", "'-1"]  # escaped in the CSV, like any export


def test_all_or_nothing_writes_nothing_when_a_row_is_bad(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    text = HEADER + "A,1,,,,,,\nB,-5,,,,,,\nC,1,,,,,,\nD,1,,,,,,\nE,x,,,,,,\n"
    job = _import(transfer_service, text, mode="all_or_nothing")
    assert (job.status, job.rows_read, job.rows_written, job.rows_failed) == ("failed", 5, 0, 2)
    assert _rows(migrated_engine) == []
    assert [line[-3] for line in _report(transfer_service, job.id)[1:]] == ["3", "6"]


def test_all_or_nothing_unique_clash_inside_the_file(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    text = HEADER + "A,1,,,,,,\nB,1,,,,,,\nA,2,,,,,,\n"
    job = _import(transfer_service, text)
    assert (job.status, job.rows_failed) == ("failed", 1)
    assert _rows(migrated_engine) == []
    job = _import(transfer_service, text, mode="valid_rows")
    assert (job.status, job.rows_written, job.rows_failed) == ("done", 2, 1)
    assert [r["title"] for r in _rows(migrated_engine)] == ["A", "B"]


def test_all_good_rows_with_history_and_autonumbers(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    text = HEADER + "".join(f"T{i},{i},,,,,,\n" for i in range(7))
    job = _import(transfer_service, text)
    assert (job.status, job.rows_written, job.rows_failed) == ("done", 7, 0)
    assert [r["number"] for r in _rows(migrated_engine)][-1] == "OR-0007"
    with migrated_engine.connect() as conn:
        query = "SELECT count(*) FROM record_history WHERE form = 'order' AND action = 'create'"
        assert conn.execute(sa.text(query)).scalar_one() == 7


def test_file_problems_fail_the_job_before_any_row(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    job = _import(transfer_service, HEADER.encode() + b"A,\xff\xfe,,,,,,\n", mode="valid_rows")
    assert (job.status, job.problems[0]["code"]) == ("failed", "transfer.bad-encoding")
    job = _import(transfer_service, "Title,Colour\nA,red\n")
    assert job.status == "failed"
    assert {p["code"] for p in job.problems} == {"transfer.unknown-column"}
    for payload in (b"Title\nnot a workbook\n", _zip_without_workbook()):
        job = _import(transfer_service, payload, file_format="xlsx")
        assert (job.status, job.problems[0]["code"]) == ("failed", "transfer.not-a-spreadsheet")
    assert _rows(migrated_engine) == []


def _zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


def test_big_and_hostile_cells_verbatim(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    big = "长" * 1_000_000
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Title", "Notes"])
    writer.writerow([INJECTION[:200], big])
    writer.writerow(["=1+2", "@SUM(A1)"])
    job = _import(transfer_service, buffer.getvalue())
    assert (job.status, job.rows_written) == ("done", 2)
    rows = _rows(migrated_engine)
    assert rows[0]["title"] == INJECTION[:200] and rows[0]["notes"] == big
    assert rows[1]["title"] == "=1+2"
    export = transfer_service.export_records(app="xfer", form="order", file_format="csv")
    data = b"".join(export.chunks).decode("utf-8-sig")
    assert ",'=1+2," in data and ",'@SUM(A1)" in data


def _fill(service: TransferService) -> None:
    _customers(service)
    text = (
        "Title,Quantity,Amount,Level,Tags,Urgent,Due date,Seen at,Customer,Notes,Phone,Items\n"
        'A,3,12.50,High,Alpha; Beta,yes,2026-01-31,2026-01-31T08:00:00+00:00,Acme,"two\nlines",'
        '+8613800000000,"[{""sku"":""X-1"",""count"":2}]"\n'
        "B,0,-1.25,Low,,no,,,,=cmd|' /C calc'!A0,,\n"
        "C,,,,,,,,,,,\n"
    )
    job = _import(service, text)
    assert (job.status, job.rows_written, job.problems) == ("done", 3, None)


def _values(engine: sa.Engine, form: str) -> list[dict[str, Any]]:
    skip = {"id", "created_at", "updated_at", "created_by", "updated_by", "owner_id", "version"}
    return [{k: v for k, v in r.items() if k not in skip} for r in _rows(engine, form)]


def _child_rows(engine: sa.Engine, form: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = f"SELECT sku, count FROM xfer__{form}__items ORDER BY id"
        return [tuple(r) for r in conn.execute(sa.text(query))]


def test_round_trip_csv_and_xlsx(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    _fill(transfer_service)
    for file_format, lang in (("csv", "zh"), ("xlsx", "en")):
        export = transfer_service.export_records(
            app="xfer", form="order", file_format=file_format, lang=lang, key_row=True
        )
        data = b"".join(export.chunks)
        with migrated_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM xfer__order_copy__items"))
            conn.execute(sa.text("DELETE FROM xfer__order_copy"))
            conn.execute(sa.text("DELETE FROM autonumber_counters WHERE form = 'order_copy'"))
        job = _import(transfer_service, data, form="order_copy", file_format=file_format)
        assert (job.status, job.rows_written, job.problems) == ("done", 3, None)
        assert _values(migrated_engine, "order_copy") == _values(migrated_engine, "order")
        assert _child_rows(migrated_engine, "order_copy") == _child_rows(migrated_engine, "order")


def test_xlsx_export_has_labels_keys_and_text_cells(
    transfer_service: TransferService,
) -> None:
    _fill(transfer_service)
    export = transfer_service.export_records(
        app="xfer", form="order", file_format="xlsx", lang="zh", key_row=True
    )
    sheet = load_workbook(io.BytesIO(b"".join(export.chunks))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("No.", "标题", "备注")
    assert rows[1][:3] == ("number", "title", "notes")
    assert len(rows) == 5


def test_progress_and_a_broken_byte_mid_file(
    transfer_service: TransferService, migrated_engine: sa.Engine
) -> None:
    good = "".join(f"T{i},{i}\n" for i in range(7)).encode()
    data = b"Title,Quantity\n" + good + b"bad \xff,1\n" + b"T9,9\n"
    seen: list[tuple[int, int, int]] = []
    job = transfer_service.import_file(
        app="xfer",
        form="order",
        upload=io.BytesIO(data),
        file_name="a.csv",
        options=ImportOptions(mode="valid_rows"),
        actor=None,
        on_progress=lambda p: seen.append((p.rows_read, p.rows_written, p.rows_failed)),
    )
    # batches of 3: two committed, the third (T6 and the bad line) is cut short by the error
    assert seen == [(3, 3, 0), (6, 6, 0)]
    assert (job.status, job.rows_written, job.problems[0]["code"]) == (
        "failed",
        6,
        "transfer.bad-encoding",
    )
    assert len(_rows(migrated_engine)) == 6
    job = _import(transfer_service, data)
    assert (job.status, job.rows_written) == ("failed", 0)
    assert len(_rows(migrated_engine)) == 6

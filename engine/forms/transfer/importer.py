"""The import run: rows → cells decoded → references resolved in bulk → validated → written.

The run knows nothing of the database: a `RecordSink` (built by the transfer service) validates
with the API's rules, resolves relation titles a batch at a time, writes batches and commits or
reports progress at checkpoints. Failed rows go to an `ErrorReport` on disk, so memory stays flat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from engine.errors import FieldError, SubmissionError
from engine.forms.transfer.cells import CellContext, CellError, Options, decode_cell
from engine.forms.transfer.job import ImportMode, ImportProgress
from engine.forms.transfer.mapping import ColumnMapping, MappedColumn
from engine.forms.transfer.readers import SourceRow, Table
from engine.forms.transfer.writers import unescape_text

BATCH_SIZE = 500
REPORT_COLUMNS = ("#row", "#error_codes", "#errors")


class RecordSink(Protocol):
    """Where an import's rows go; implemented over the records storage by the service."""

    def resolve_references(self, field: Any, texts: set[str]) -> Mapping[str, list[int]]:
        """For each title text, the ids of the live target records with that title."""
        ...

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The clean record, by the same rules as an API create; raises SubmissionError."""
        ...

    def write(self, records: Sequence[dict[str, Any]]) -> Mapping[int, FieldError]:
        """Insert `records`; returns the failures by position (the others are written)."""
        ...

    def checkpoint(self, progress: ImportProgress, *, keep: bool) -> None:
        """A batch is through: commit it when `keep` (`valid_rows`), and publish `progress`."""
        ...


@dataclass(slots=True)
class _Pending:
    row: SourceRow
    data: dict[str, Any]
    errors: list[FieldError]


class ErrorReport:
    """Failed rows (original cells and errors) appended to a JSON-lines file."""

    def __init__(self, path: Path, headers: Sequence[str]) -> None:
        self.path = path
        self.headers = tuple(headers)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w", encoding="utf-8")
        self._handle.write(json.dumps({"headers": self.headers}, ensure_ascii=False) + "\n")

    def add(self, row: SourceRow, errors: Sequence[FieldError]) -> None:
        line = {
            "row": row.number,
            "cells": [_plain(c) for c in row.cells],
            "errors": [e.to_dict() for e in errors],
        }
        self._handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        self._handle.close()


def _plain(cell: Any) -> Any:
    return cell if cell is None or isinstance(cell, str | int | float | bool) else str(cell)


def read_error_report(path: Path) -> Iterator[list[Any]]:
    """The report as rows: the original header plus `#row`, `#error_codes`, `#errors`."""
    with path.open(encoding="utf-8") as handle:
        headers = json.loads(next(handle))["headers"]
        yield [*headers, *REPORT_COLUMNS]
        for line in handle:
            item = json.loads(line)
            errors = item["errors"]
            codes = "; ".join(e["code"] for e in errors)
            texts = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
            cells = list(item["cells"]) + [None] * (len(headers) - len(item["cells"]))
            yield [*cells, item["row"], codes, texts]


@dataclass(frozen=True, slots=True)
class ImportRun:
    """What one run needs besides the rows: the form's columns, mode and collaborators."""

    mapping: ColumnMapping
    mode: ImportMode
    sink: RecordSink
    report: ErrorReport
    options: Mapping[str, Options]
    lang: str = "en"
    unescape: bool = False
    batch_size: int = BATCH_SIZE
    on_progress: Callable[[ImportProgress], None] | None = None


def run_import(table: Table, run: ImportRun) -> ImportProgress:
    """Import every row of `table`; returns the final counts.

    In `all_or_nothing` mode writing stops at the first bad row but validation goes on, so the
    report lists every bad row; the caller then rolls everything back.
    """
    progress = ImportProgress()
    rows = _data_rows(table.rows, run.mapping)
    if run.unescape:
        rows = (_unescaped(row) for row in rows)
    while batch := list(islice(rows, run.batch_size)):
        pending = [_decode(row, run) for row in batch]
        _resolve_references(pending, run)
        clean = _validate(pending, run)
        writable = run.mode == "valid_rows" or progress.rows_failed == 0
        written = _write(clean, run) if writable and clean else 0
        failed = 0
        for item in pending:
            if item.errors:
                failed += 1
                run.report.add(item.row, item.errors)
        progress = progress.add(read=len(batch), written=written, failed=failed)
        run.sink.checkpoint(progress, keep=run.mode == "valid_rows")
        if run.on_progress is not None:
            run.on_progress(progress)
    return progress


def _data_rows(rows: Iterator[SourceRow], mapping: ColumnMapping) -> Iterator[SourceRow]:
    first = next(rows, None)
    if first is None:
        return
    if first.error is not None or not mapping.is_key_row(first.cells):
        yield first
    yield from rows


def _unescaped(row: SourceRow) -> SourceRow:
    cells = tuple(unescape_text(c) if isinstance(c, str) else c for c in row.cells)
    return SourceRow(number=row.number, cells=cells, error=row.error)


def _decode(row: SourceRow, run: ImportRun) -> _Pending:
    if row.error is not None:
        return _Pending(row=row, data={}, errors=[row.error])
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for column in run.mapping.columns:
        cell = row.cells[column.index]
        ctx = CellContext(lang=run.lang, options=run.options.get(column.field.key))
        try:
            data[column.field.key] = decode_cell(column.field, cell, ctx)
        except CellError as err:
            errors.append(FieldError(loc=column.field.key, code=err.code, message=str(err)))
    return _Pending(row=row, data=data, errors=errors)


def _relation_columns(mapping: ColumnMapping) -> Iterable[MappedColumn]:
    return (c for c in mapping.columns if str(c.field.type) == "relation")


def _titles(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and not v.strip().isdigit()]


def _resolve_references(pending: list[_Pending], run: ImportRun) -> None:
    """Replace relation titles by ids: one lookup per relation column per batch."""
    for column in _relation_columns(run.mapping):
        key = column.field.key
        texts = {t for p in pending if not p.errors for t in _titles(p.data.get(key))}
        if not texts:
            continue
        found = run.sink.resolve_references(column.field, texts)
        for item in pending:
            if not item.errors and key in item.data:
                item.data[key] = _replace_titles(item, key, found)


def _replace_titles(item: _Pending, key: str, found: Mapping[str, list[int]]) -> Any:
    value = item.data[key]
    many = isinstance(value, list)
    out: list[Any] = []
    for part in value if many else [value]:
        if part in (None, "") or not isinstance(part, str) or part.strip().isdigit():
            out.append(part)
            continue
        ids = found.get(part, [])
        if len(ids) != 1:
            code = "transfer.ambiguous-reference" if ids else "transfer.unknown-reference"
            detail = f"{len(ids)} records are titled" if ids else "no record is titled"
            item.errors.append(FieldError(loc=key, code=code, message=f"{detail} {part!r}"))
        out.append(ids[0] if ids else part)
    return out if many else out[0]


def _validate(pending: list[_Pending], run: ImportRun) -> list[tuple[_Pending, dict[str, Any]]]:
    clean: list[tuple[_Pending, dict[str, Any]]] = []
    for item in pending:
        if item.errors:
            continue
        try:
            clean.append((item, run.sink.validate(item.data)))
        except SubmissionError as err:
            item.errors.extend(err.errors)
    return clean


def _write(clean: list[tuple[_Pending, dict[str, Any]]], run: ImportRun) -> int:
    failures = run.sink.write([record for _item, record in clean])
    for position, error in failures.items():
        clean[position][0].errors.append(error)
    return len(clean) - len(failures)


__all__ = [
    "BATCH_SIZE",
    "REPORT_COLUMNS",
    "ErrorReport",
    "ImportRun",
    "RecordSink",
    "read_error_report",
    "run_import",
]

"""Report export to CSV or XLSX, streamed from a server-side cursor in flat memory.

The actor needs `read` and `export` on the report's form. Access is checked before the first
byte; the rows are read while the response streams, in a connection of their own. CSV cells
that look like formulas are escaped as the record export escapes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from engine.forms.record_access import Who
from engine.forms.transfer.writers import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    iter_file,
    write_csv,
    write_xlsx,
)
from engine.forms.transfer_service import ExportFile
from engine.identity.permissions import require
from engine.reports.compiler import CompiledReport
from engine.reports.query import FilterClause
from engine.reports.runner import stream_rows
from engine.reports.service import ReportService

ExportFormat = Literal["csv", "xlsx"]


def export_report(
    runs: ReportService,
    *,
    app: str,
    key: str,
    actor: Who,
    file_format: ExportFormat,
    filters: Sequence[FilterClause] = (),
    timezone: str | None = None,
) -> ExportFile:
    """The installed report `key` as a streamed file (every row: the report's limit applies).

    Raises:
        NotFoundError: `report.not-found` (before any byte).
        PermissionDenied: no read or no export on the report's form (before any byte).
    """
    with runs.unit() as uow:
        spec = runs.installed(uow, app=app, key=key)
        compiled = runs.compile(uow, app=app, spec=spec, timezone=timezone)
    return export_compiled(runs, compiled, actor=actor, file_format=file_format, filters=filters)


def export_compiled(
    runs: ReportService,
    compiled: CompiledReport,
    *,
    actor: Who,
    file_format: ExportFormat,
    filters: Sequence[FilterClause] = (),
) -> ExportFile:
    """`compiled` (installed or ad hoc) as a streamed file; access checked first.

    Raises:
        PermissionDenied: no read or no export on the report's form (before any byte).
    """
    with runs.unit() as uow:
        accesses = runs.accesses(uow, compiled, actor)
        require(accesses[compiled.form], "export")
    key = compiled.spec.key
    rows = _rows(runs, compiled, actor=actor, filters=tuple(filters))
    if file_format == "xlsx":
        return ExportFile(XLSX_MEDIA_TYPE, f"{key}.xlsx", _xlsx(rows, key))
    return ExportFile(CSV_MEDIA_TYPE, f"{key}.csv", write_csv(rows))


def _rows(
    runs: ReportService,
    compiled: CompiledReport,
    *,
    actor: Who,
    filters: tuple[FilterClause, ...],
) -> Iterator[list[Any]]:
    """The header (column labels), then each row, read through a server-side cursor."""
    yield [column.label for column in compiled.columns]
    with runs.unit() as uow:
        accesses = runs.accesses(uow, compiled, actor)
        for row in stream_rows(
            uow.conn,
            compiled,
            actor=actor,
            now=runs.clock(),
            extra_filters=filters,
            access=accesses,
        ):
            yield list(row)


def _xlsx(rows: Iterator[list[Any]], key: str) -> Iterator[bytes]:
    # A generator, so the workbook is only written once the response starts streaming.
    yield from iter_file(write_xlsx(rows, sheet_title=key))


__all__ = ["ExportFormat", "export_compiled", "export_report"]

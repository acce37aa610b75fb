"""Correctness suite for the parts, PM and product KPIs (AFTERSALES.md §4 P3, P4, M1, I3, M3):
each bundle report through the engine against hand-written SQL on generated data
(bench/_report_data_ops.py) on each database, and the same rows on both databases.
Medians are checked against a Python reference over the rows the hand SQL selects."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.reports.query import FilterClause
from engine.reports.service import ReportService
from tests.conftest import _clean_committed_data
from tests.engine.reports.conftest import TICKETS, report_data
from tests.engine.reports.test_kpi_reports import _normal, _percentile

ops: Any = importlib.import_module("_report_data_ops")  # bench/ is on sys.path (conftest)
NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 3, 1), date(2025, 5, 31)
_SQLITE_ROWS: dict[str, list[tuple[Any, ...]]] = {}


@pytest.fixture(scope="module")
def ops_data(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    ops.install(migrated_engine)
    ops.load(migrated_engine, TICKETS)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


@pytest.fixture(scope="module")
def service(ops_data: sa.Engine) -> ReportService:
    return ReportService(ops_data, clock=lambda: NOW)


def _medians(rows: Sequence[Sequence[Any]], width: int) -> list[tuple[Any, ...]]:
    """(group…, count, median) from raw (group…, value) rows, groups ascending."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        values = groups.setdefault(tuple(row[:width]), [])
        if row[width] is not None:
            values.append(float(row[width]))
    return [
        (*group, len(groups[group]), _percentile(sorted(groups[group]), 0.5))
        for group in sorted(groups, key=lambda g: tuple((v is None, v) for v in g))
    ]


def _days_to_release(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """(status, source, created_at, released_at) → (status, source, days or None); days are
    whole days from creation to midnight UTC of the release date (DATEDIF truncates)."""
    out = []
    for status, source, created, released in rows:
        created = created if isinstance(created, datetime) else datetime.fromisoformat(created)
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        if released is None:
            out.append((status, source, None))
            continue
        released = date.fromisoformat(released) if isinstance(released, str) else released
        seconds = datetime(released.year, released.month, released.day, tzinfo=UTC) - created
        out.append((status, source, math.trunc(seconds.total_seconds() / 86_400)))
    return out


def _m3_expected(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for status, source, days in _days_to_release(rows):
        groups.setdefault((status, source), []).append(days)
    result = []
    for group in sorted(groups):
        days = sorted(float(d) for d in groups[group] if d is not None)
        median = _percentile(days, 0.5) if days else None
        result.append((*group, len(groups[group]), median))
    return result


@pytest.mark.parametrize("key", ops.KPI_KEYS)
def test_engine_equals_hand_sql(service: ReportService, ops_data: sa.Engine, key: str) -> None:
    dialect = ops_data.dialect.name
    period = [FilterClause(ops.DATE_FIELDS[key], "between", [FIRST.isoformat(), LAST.isoformat()])]
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=period)
    params = {**report_data.period_params(FIRST, LAST), "first": FIRST, "last": LAST}
    with ops_data.connect() as conn:
        expected = conn.execute(sa.text(ops.hand_sql(key)), params).all()
    if key == "p4_transfer_lead_time":
        expected = _medians(expected, 1)
    elif key == "m3_improvement_requests":
        expected = _m3_expected(expected)
    engine_rows = _normal(result.rows)
    assert engine_rows == _normal(expected)
    assert engine_rows, f"{key}: the generated data should give rows"
    if dialect == "sqlite":
        _SQLITE_ROWS[key] = engine_rows
    elif key in _SQLITE_ROWS:  # the same data on both databases gives the same rows
        assert engine_rows == _SQLITE_ROWS[key]


def test_pm_compliance_counts_skipped_out_and_missed_in(service: ReportService) -> None:
    result = service.run(app="aftersales", key="m1_pm_compliance", actor=None)
    due = sum(row[1] for row in result.rows)
    on_time, missed = sum(row[2] for row in result.rows), sum(row[3] for row in result.rows)
    assert 0 < missed < due and 0.5 < on_time / due < 0.95

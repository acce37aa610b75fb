"""Correctness suite: every after-sales KPI report through the engine and through hand SQL.

The reports are the bundle's own (templates/aftersales/reports), installed with the bundle;
the data is generated (bench/_report_data.py). Engine rows and hand-written rows must be equal
(numbers to 9 significant digits) on each database, and so must the rows of the two databases
(`test_same_rows_on_both_databases` compares against a stored SQLite result when PostgreSQL runs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.reports.query import FilterClause
from engine.reports.service import ReportService
from tests.engine.reports.conftest import report_data

FROM, KPI_KEYS, POP = report_data.FROM, report_data.KPI_KEYS, report_data.POP
hand_sql, period_params = report_data.hand_sql, report_data.period_params

NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
PERIOD = [FilterClause("created_at", "between", ["2025-03-01", "2025-05-31"])]

_SQLITE_ROWS: dict[str, list[tuple[Any, ...]]] = {}


def _percentile(values: list[float], fraction: float) -> float:
    """percentile_cont: linear interpolation between the rows around fraction·(n−1)."""
    position = fraction * (len(values) - 1)
    first = math.floor(position)
    low = values[first]
    if position == first:
        return low
    return low + (values[first + 1] - low) * (position - first)


def _weekly_percentiles(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    weeks: dict[Any, list[float]] = {}
    for week, value in rows:
        weeks.setdefault(_value(week), []).append(float(value))
    return [
        (week, len(values), _percentile(sorted(values), 0.5), _percentile(sorted(values), 0.9))
        for week, values in sorted(weeks.items())
    ]


def _normal(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(_value(v) for v in row) for row in rows]


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | float | int):
        number = float(value)
        if number == 0 or math.isnan(number):
            return number
        return float(f"{number:.9g}")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return date.fromisoformat(value)
    return value


@pytest.fixture(scope="module")
def service(aftersales_data: sa.Engine) -> ReportService:
    return ReportService(aftersales_data, clock=lambda: NOW)


@pytest.mark.parametrize("key", KPI_KEYS)
def test_engine_equals_hand_sql(
    service: ReportService, aftersales_data: sa.Engine, key: str
) -> None:
    dialect = aftersales_data.dialect.name
    period = [] if key in report_data.UNDATED else PERIOD
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=period)
    sql = hand_sql(key, dialect, raw_percentiles=True)
    params = period_params(date(2025, 3, 1), date(2025, 5, 31))
    with aftersales_data.connect() as conn:
        expected = conn.execute(sa.text(sql), params).all()
    if key == "e1_frt_percentiles":
        expected = _weekly_percentiles(expected)
    engine_rows = _normal(result.rows)
    assert engine_rows == _normal(expected)
    assert engine_rows, f"{key}: the generated data should give rows"
    if dialect == "sqlite":
        _SQLITE_ROWS[key] = engine_rows
    elif key in _SQLITE_ROWS:  # the same data on both databases gives the same rows
        assert engine_rows == _SQLITE_ROWS[key]


def test_top_faults_has_others_row(service: ReportService) -> None:
    result = service.run(app="aftersales", key="i1_top_faults", actor=None, extra_filters=PERIOD)
    assert result.others is True
    assert len(result.rows) == 11
    assert result.rows[-1][0] is None
    counts = [row[1] for row in result.rows[:-1]]
    assert counts == sorted(counts, reverse=True)


def test_backlog_ages_against_now(service: ReportService, aftersales_data: sa.Engine) -> None:
    result = service.run(app="aftersales", key="t1_backlog", actor=None)
    total = sum(row[2] for row in result.rows)
    with aftersales_data.connect() as conn:
        expected = conn.execute(sa.text(
            f"SELECT COUNT(*) {FROM} WHERE {POP} AND t.status_category IN ('open', 'paused')"
        )).scalar()  # fmt: skip
    assert total == expected
    ages = {row[1] for row in result.rows}
    assert ages <= {"a <1d", "b 1-3d", "c 3-7d", "d 7-30d", "e >30d"}

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

NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
PERIOD = [FilterClause("created_at", "between", ["2025-03-01", "2025-05-31"])]
POP = (
    "t.deleted_at IS NULL AND COALESCE(t.status, '') <> 'cancelled' "
    "AND (c.internal IS NULL OR NOT c.internal) "
    "AND COALESCE(t.close_reason, '') <> 'cancelled_duplicate' "
    "AND COALESCE(t.resolution_code, '') <> 'duplicate'"
)
FROM = (
    "FROM aftersales__ticket t LEFT JOIN aftersales__customer c "
    "ON c.id = t.customer AND c.deleted_at IS NULL"
)
# created_at in [2025-03-01, 2025-06-01) Asia/Shanghai, as UTC
IN_PERIOD = "t.created_at >= :low AND t.created_at < :high"
PERIOD_PARAMS = {
    "low": datetime(2025, 2, 28, 16, 0, tzinfo=UTC),
    "high": datetime(2025, 5, 31, 16, 0, tzinfo=UTC),
}
NOT_CONFIRMED = "('user_error', 'no_fault_found', 'answered', 'duplicate')"


def _grain(column: str, grain: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(date_trunc('{grain}', timezone('Asia/Shanghai', {column})) AS DATE)"
    if grain == "week":
        return f"date({column}, '+480 minutes', 'weekday 0', '-6 days')"
    return f"date({column}, '+480 minutes', 'start of {grain}')"


def _seconds(start: str, end: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({end} - {start})))"
    return f"(strftime('%s', {end}) - strftime('%s', {start}))"


def _hand(key: str, dialect: str) -> tuple[str, dict[str, Any]]:
    """The hand-written SQL of report `key` (with the period filter) and its parameters."""
    p = dict(PERIOD_PARAMS)
    base = f"{FROM} WHERE {POP} AND {IN_PERIOD}"
    if key == "e1_frt":
        sql = (f"SELECT COUNT(*), AVG(t.frt_bsec) {base} AND t.first_response_at IS NOT NULL "
               "AND COALESCE(t.channel, '') <> 'system'")  # fmt: skip
    elif key == "e1_frt_percentiles":  # raw values: percentiles are computed in Python
        week = _grain("t.first_response_at", "week", dialect)
        sql = (f"SELECT {week}, t.frt_bsec {base} AND t.first_response_at IS NOT NULL "
               "AND COALESCE(t.channel, '') <> 'system' ORDER BY 1")  # fmt: skip
    elif key == "e2_art":
        sql = (f"SELECT t.ticket_type, COUNT(*), SUM(t.first_resolution_bsec), "
               f"CAST(SUM(t.first_resolution_bsec) AS FLOAT) / NULLIF(COUNT(*), 0) {base} "
               "AND t.first_resolved_at IS NOT NULL GROUP BY t.ticket_type "
               "ORDER BY t.ticket_type")  # fmt: skip
    elif key == "e3_mttr":
        seconds = _seconds("t.created_at", "t.first_resolved_at", dialect)
        sql = (f"SELECT m.product_line, COUNT(*), AVG({seconds}) {FROM} "
               "LEFT JOIN aftersales__product_model m ON m.id = t.product_model "
               f"AND m.deleted_at IS NULL WHERE {POP} AND {IN_PERIOD} AND t.ticket_type = 'repair'"
               " AND t.device IS NOT NULL AND t.first_resolved_at IS NOT NULL AND "
               f"COALESCE(t.resolution_code, '') NOT IN {NOT_CONFIRMED} "
               "GROUP BY m.product_line ORDER BY m.product_line")  # fmt: skip
    elif key == "e5_fcr":
        first = ("t.agent_reply_count <= 1 AND t.reopen_count = 0 AND t.visit_count = 0 AND "
                 "t.transfer_count = 0 AND t.escalation_level = 0")  # fmt: skip
        sql = (f"SELECT t.channel, COUNT(*), SUM(CASE WHEN {first} THEN 1 ELSE 0 END), "
               f"CAST(SUM(CASE WHEN {first} THEN 1 ELSE 0 END) AS FLOAT) / COUNT(*) {base} AND "
               "t.first_resolved_at IS NOT NULL AND t.ticket_type IN ('tech_support', "
               "'consultation', 'repair') AND COALESCE(t.channel, '') <> 'system' "
               "GROUP BY t.channel ORDER BY t.channel")  # fmt: skip
    elif key in ("q1_response_sla", "q2_resolution_sla"):
        state = "t.response_state" if key.startswith("q1") else "t.resolution_state"
        met = f"SUM(CASE WHEN {state} = 'met' THEN 1 ELSE 0 END)"
        breached = f"SUM(CASE WHEN {state} = 'breached' THEN 1 ELSE 0 END)"
        sql = (f"SELECT tm.name, {met}, {breached}, CAST({met} AS FLOAT) / ({met} + {breached}) "
               f"{FROM} LEFT JOIN aftersales__team tm ON tm.id = t.team AND tm.deleted_at IS NULL"
               f" WHERE {POP} AND {IN_PERIOD} AND {state} IN ('met', 'breached') "
               f"GROUP BY tm.name ORDER BY 4, 1")  # fmt: skip
    elif key == "q3_reopen_rate":
        month = _grain("t.first_resolved_at", "month", dialect)
        reopened = "SUM(CASE WHEN t.reopen_count >= 1 THEN 1 ELSE 0 END)"
        sql = (f"SELECT {month}, COUNT(*), {reopened}, SUM(t.reopen_count), "
               f"CAST({reopened} AS FLOAT) / COUNT(*), "
               "CAST(SUM(t.reopen_count) AS FLOAT) / COUNT(*)"
               f" {base} AND t.first_resolved_at IS NOT NULL GROUP BY 1 ORDER BY 1")  # fmt: skip
    elif key == "q7_complaint_rate":
        complaints = "SUM(CASE WHEN t.ticket_type = 'complaint' THEN 1 ELSE 0 END)"
        others = "SUM(CASE WHEN t.ticket_type <> 'complaint' THEN 1 ELSE 0 END)"
        sql = (f"SELECT t.region, {complaints}, {others}, "
               f"CAST({complaints} * 1000 AS FLOAT) / NULLIF({others}, 0) {base} "
               "GROUP BY t.region ORDER BY t.region")  # fmt: skip
    elif key == "i1_top_faults":
        sql = (f"WITH f AS (SELECT t.fault_code AS code, COUNT(*) AS n {base} AND t.fault_code IS "
               "NOT NULL GROUP BY t.fault_code), r AS (SELECT code, n, ROW_NUMBER() OVER (ORDER BY"
               " n DESC, code) AS rn FROM f) SELECT CASE WHEN rn <= 10 THEN code END, SUM(n) FROM r"
               " GROUP BY CASE WHEN rn <= 10 THEN code END, CASE WHEN rn <= 10 THEN 0 ELSE 1 END "
               "ORDER BY CASE WHEN rn <= 10 THEN 0 ELSE 1 END, 2 DESC, 1")  # fmt: skip
    elif key == "i4_negative_sentiment":
        negative = "SUM(CASE WHEN t.sentiment = 'negative' THEN 1 ELSE 0 END)"
        sql = (f"SELECT t.channel, COUNT(*), {negative}, CAST({negative} AS FLOAT) / COUNT(*) "
               f"{base} AND t.sentiment IS NOT NULL GROUP BY t.channel "
               "ORDER BY t.channel")  # fmt: skip
    elif key == "i5_failed_devices":
        sql = (f"SELECT m.code, d.batch_no, d.region, COUNT(DISTINCT t.device) {FROM} "
               "JOIN aftersales__device d ON d.id = t.device AND d.deleted_at IS NULL "
               "LEFT JOIN aftersales__product_model m ON m.id = d.product_model AND "
               f"m.deleted_at IS NULL WHERE {POP} AND {IN_PERIOD} AND t.ticket_type IN "
               f"('repair', 'return_exchange') AND COALESCE(t.resolution_code, '') NOT IN "
               f"{NOT_CONFIRMED} GROUP BY m.code, d.batch_no, d.region "
               "ORDER BY 1, 2, 3")  # fmt: skip
    elif key == "t4_inflow":
        week = _grain("t.created_at", "week", dialect)
        sql = (f"SELECT {week}, COUNT(*), SUM(CASE WHEN t.first_resolved_at IS NOT NULL THEN 1 "
               f"ELSE 0 END) {base} GROUP BY 1 ORDER BY 1")  # fmt: skip
    else:
        raise KeyError(key)
    return sql, p


KEYS = [
    "e1_frt", "e1_frt_percentiles", "e2_art", "e3_mttr", "e5_fcr", "q1_response_sla",
    "q2_resolution_sla", "q3_reopen_rate", "q7_complaint_rate", "i1_top_faults",
    "i4_negative_sentiment", "i5_failed_devices", "t4_inflow",
]  # fmt: skip
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


@pytest.mark.parametrize("key", KEYS)
def test_engine_equals_hand_sql(
    service: ReportService, aftersales_data: sa.Engine, key: str
) -> None:
    dialect = aftersales_data.dialect.name
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=PERIOD)
    sql, params = _hand(key, dialect)
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

"""Correctness suite for the field-service KPIs (E3 on-site, E4, E6, E7, P1, P2, T2).

The bundle's reports run through the engine and their hand-written SQL
(bench/_report_data_field_sql.py, shared with bench/reports.py) runs on the same generated
data (bench/_report_data.py tickets plus bench/_report_data_field.py visits, items,
consumption and activity). Rows must be equal to 9 significant digits on each database, and
equal between the databases when both run in one session. Medians are checked against a
percentile_cont computed here from the raw values the hand SQL selects.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.reports.query import FilterClause
from engine.reports.service import ReportService
from tests.conftest import ROOT, _clean_committed_data
from tests.engine.reports.conftest import TICKETS, report_data
from tests.engine.reports.test_kpi_reports import _normal, _percentile

sys.path.insert(0, str(ROOT / "bench"))
import _report_data_field as field_data  # type: ignore[import-not-found]  # noqa: E402
import _report_data_field_sql as field_sql  # type: ignore[import-not-found]  # noqa: E402

NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 3, 1), date(2025, 5, 31)
HAND_SQL: dict[str, tuple[str, str]] = field_sql.HAND_SQL  # key → (event date, hand SQL)
# key → (event date, SQL of the other columns, SQL of (group, value) rows for a Python median)
MEDIAN_SQL: dict[str, tuple[str, str, str]] = {
    key: (event, f"SELECT {columns.format(median='NULL')} {source} {tail}",
          f"SELECT {tail.split()[2]}, {value} {source} AND {value} IS NOT NULL")
    for key, (event, columns, value, source, tail) in field_sql.MEDIANS.items()
}  # fmt: skip
KEYS = [*HAND_SQL, *MEDIAN_SQL]
_SQLITE_ROWS: dict[str, list[tuple[Any, ...]]] = {}


@pytest.fixture(scope="module")
def field_engine(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    report_data.install(migrated_engine)
    report_data.load(migrated_engine, TICKETS)
    field_data.load_field(migrated_engine)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


@pytest.fixture(scope="module")
def service(field_engine: sa.Engine) -> ReportService:
    return ReportService(field_engine, clock=lambda: NOW)


def _run(service: ReportService, key: str, event: str) -> list[tuple[Any, ...]]:
    period = [FilterClause(event, "between", [FIRST.isoformat(), LAST.isoformat()])]
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=period)
    return _normal(result.rows)


def _hand(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), report_data.period_params(FIRST, LAST)).all())


def _with_medians(rows: Sequence[Sequence[Any]], values: Sequence[Sequence[Any]]) -> list[Any]:
    """Fill column 2 (the median placeholder) with percentile_cont(0.5) of each group."""
    groups: dict[Any, list[float]] = {}
    for group, value in values:
        groups.setdefault(group, []).append(float(value))
    out = []
    for row in rows:
        found = sorted(groups.get(row[0], []))
        out.append((*row[:2], _percentile(found, 0.5) if found else None, *row[3:]))
    return out


def _check_both_databases(key: str, dialect: str, rows: list[tuple[Any, ...]]) -> None:
    if dialect == "sqlite":
        _SQLITE_ROWS[key] = rows
    elif key in _SQLITE_ROWS:
        assert rows == _SQLITE_ROWS[key]


@pytest.mark.parametrize("key", KEYS)
def test_engine_equals_hand_sql(service: ReportService, field_engine: sa.Engine, key: str) -> None:
    if key in HAND_SQL:
        event, sql = HAND_SQL[key]
        expected = _normal(_hand(field_engine, sql))
    else:
        event, sql, values_sql = MEDIAN_SQL[key]
        expected = _normal(_with_medians(_hand(field_engine, sql), _hand(field_engine, values_sql)))
    rows = _run(service, key, event)
    assert rows == expected
    assert len(rows) >= 2, f"{key}: the generated data should give several groups"
    _check_both_databases(key, field_engine.dialect.name, rows)


def test_generated_counters_match_their_rows(field_engine: sa.Engine) -> None:
    """The generator keeps the ticket's derived fields equal to what their source rows say."""
    sql = (
        "SELECT COUNT(*) FROM aftersales__ticket t WHERE t.visit_count <> (SELECT COUNT(*) FROM "
        "aftersales__field_visit v WHERE v.ticket = t.id) OR t.handle_sec <> (SELECT "
        "COALESCE(SUM(a.handle_sec), 0) FROM aftersales__ticket_activity a WHERE a.ticket = t.id)"
        " OR t.agent_reply_count <> (SELECT COUNT(*) FROM aftersales__ticket_activity a WHERE "
        "a.ticket = t.id AND a.actor IS NOT NULL AND a.kind IN ('public_reply', 'call_in', "
        "'call_out'))"
    )
    with field_engine.connect() as conn:
        assert conn.execute(sa.text(sql)).scalar() == 0


def test_ftfr_numerator_needs_a_single_fixed_visit(
    service: ReportService, field_engine: sa.Engine
) -> None:
    rows = _run(service, "e6_ftfr", "check_out_at")
    total, fixed = sum(r[1] for r in rows), sum(r[2] for r in rows)
    assert 0 < fixed < total

"""Correctness suite for the field-service KPIs (E3 on-site, E4, E6, E7, P1, P2, T2).

The bundle's reports run through the engine and their hand-written SQL runs on the same
generated data (bench/_report_data.py tickets plus bench/_report_data_field.py visits, items,
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

NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 3, 1), date(2025, 5, 31)
POP = report_data.POP
CUSTOMER = "LEFT JOIN aftersales__customer c ON c.id = t.customer AND c.deleted_at IS NULL"
VISITS = ("FROM aftersales__field_visit v JOIN aftersales__ticket t ON t.id = v.ticket AND "
          f"t.deleted_at IS NULL {CUSTOMER} WHERE v.deleted_at IS NULL AND {POP}")  # fmt: skip
FIRST_REPAIR = ("v.sequence = 1 AND v.visit_type = 'repair' AND v.status IN ('completed', "
                "'incomplete') AND COALESCE(v.incomplete_reason, '') <> 'customer_absent' "
                "AND v.check_out_at IS NOT NULL")  # fmt: skip
FIXED = "v.result = 'fixed' AND t.visit_count = 1"
SHORT = "v.status = 'incomplete' AND v.incomplete_reason = 'needs_parts'"
MET, BREACHED = "t.onsite_state = 'met'", "t.onsite_state = 'breached'"


def _in(column: str) -> str:
    return f"{column} >= :low AND {column} < :high"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS FLOAT) / NULLIF({denominator}, 0)"


# report key → (event-date field of the report, hand SQL; :low/:high bound the period)
HAND_SQL: dict[str, tuple[str, str]] = {
    "e3_mttr_onsite": ("check_out_at", (
        f"SELECT t.region, COUNT(*), AVG(v.labour_min) {VISITS} AND v.visit_type = 'repair' "
        f"AND v.status = 'completed' AND v.check_out_at IS NOT NULL AND {_in('v.check_out_at')} "
        "GROUP BY t.region ORDER BY t.region")),
    "e4_aht": ("at", (
        f"SELECT t.channel, SUM(a.handle_sec), COUNT(DISTINCT a.ticket), "
        f"{_ratio('SUM(a.handle_sec)', 'COUNT(DISTINCT a.ticket)')} "
        "FROM aftersales__ticket_activity a JOIN aftersales__ticket t ON t.id = a.ticket AND "
        f"t.deleted_at IS NULL {CUSTOMER} WHERE a.deleted_at IS NULL AND {POP} AND a.kind IN "
        f"('call_in', 'call_out', 'remote_work') AND {_in('a.at')} "
        "GROUP BY t.channel ORDER BY t.channel")),
    "e6_ftfr": ("check_out_at", (
        f"SELECT t.region, COUNT(*), {_count(FIXED)}, {_ratio(_count(FIXED), 'COUNT(*)')} "
        f"{VISITS} AND {FIRST_REPAIR} AND {_in('v.check_out_at')} "
        "GROUP BY t.region ORDER BY t.region")),
    "p1_parts_usage": ("posted_at", (
        "SELECT sp.code, SUM(pc.qty), SUM(pc.cost) FROM aftersales__part_consumption pc "
        "JOIN aftersales__field_visit v ON v.id = pc.visit AND v.deleted_at IS NULL "
        f"JOIN aftersales__ticket t ON t.id = v.ticket AND t.deleted_at IS NULL {CUSTOMER} "
        "LEFT JOIN aftersales__spare_part sp ON sp.id = pc.spare_part AND sp.deleted_at IS NULL "
        f"WHERE pc.deleted_at IS NULL AND {POP} AND {_in('pc.posted_at')} "
        "GROUP BY sp.code ORDER BY 3 DESC, 1 LIMIT 20")),
    "p2_first_visit_parts": ("check_out_at", (
        f"SELECT t.region, COUNT(*), {_count(SHORT)}, "
        f"1 - {_ratio(_count(SHORT), 'COUNT(*)')} {VISITS} AND v.sequence = 1 AND "
        "t.ticket_type = 'repair' AND v.status IN ('completed', 'incomplete') AND "
        f"v.check_out_at IS NOT NULL AND {_in('v.check_out_at')} "
        "GROUP BY t.region ORDER BY t.region")),
    "t2_engineer_workload": ("check_out_at", (
        "SELECT v.engineer, COUNT(*), SUM(v.labour_min / 60.0), SUM(v.travel_min / 60.0), "
        f"{_count(FIRST_REPAIR)}, {_count(FIRST_REPAIR + ' AND ' + FIXED)}, "
        f"{_ratio(_count(FIRST_REPAIR + ' AND ' + FIXED), _count(FIRST_REPAIR))} {VISITS} AND "
        "v.status IN ('completed', 'incomplete') AND v.check_out_at IS NOT NULL AND "
        f"v.engineer IS NOT NULL AND {_in('v.check_out_at')} "
        "GROUP BY v.engineer ORDER BY 2 DESC, 1")),
}  # fmt: skip
MEDIAN_SQL: dict[str, tuple[str, str, str]] = {
    # report key → (event-date field, SQL of the other columns, SQL of (group, value) rows)
    "e7_onsite": ("first_check_in_at", (
        f"SELECT t.region, COUNT(*), NULL, {_count(MET)}, "
        f"{_count(BREACHED)}, "
        f"{_ratio(_count(MET), _count(MET) + ' + ' + _count(BREACHED))} {report_data.FROM} "
        f"WHERE {POP} AND t.first_check_in_at IS NOT NULL AND t.onsite_state IN ('met', "
        f"'breached') AND {_in('t.first_check_in_at')} GROUP BY t.region ORDER BY t.region"), (
        f"SELECT t.region, t.onsite_bsec {report_data.FROM} WHERE {POP} AND t.first_check_in_at "
        "IS NOT NULL AND t.onsite_state IN ('met', 'breached') AND t.onsite_bsec IS NOT NULL AND "
        f"{_in('t.first_check_in_at')}")),
}  # fmt: skip


def _t2_sql() -> tuple[str, str]:
    desk = "t.ticket_type IN ('tech_support', 'consultation', 'repair') AND t.channel <> 'system'"
    first = (f"{desk} AND t.agent_reply_count <= 1 AND t.reopen_count = 0 AND t.visit_count = 0"
             " AND t.transfer_count = 0 AND t.escalation_level = 0")  # fmt: skip
    columns = [
        "COUNT(*)", "NULL",
        _count("t.response_state = 'met'"), _count("t.response_state IN ('met', 'breached')"),
        _ratio(_count("t.response_state = 'met'"),
               _count("t.response_state IN ('met', 'breached')")),
        _count("t.resolution_state = 'met'"), _count("t.resolution_state IN ('met', 'breached')"),
        _ratio(_count("t.resolution_state = 'met'"),
               _count("t.resolution_state IN ('met', 'breached')")),
        _count(desk), _count(first), _ratio(_count(first), _count(desk)),
        _count("t.reopen_count >= 1"), _ratio(_count("t.reopen_count >= 1"), "COUNT(*)"),
    ]  # fmt: skip
    where = (f"{report_data.FROM} WHERE {POP} AND t.first_resolved_at IS NOT NULL AND "
             f"t.assignee IS NOT NULL AND {_in('t.first_resolved_at')}")  # fmt: skip
    rows = f"SELECT t.assignee, {', '.join(columns)} {where} GROUP BY t.assignee ORDER BY 2 DESC, 1"
    return rows, f"SELECT t.assignee, t.frt_bsec {where} AND t.frt_bsec IS NOT NULL"


MEDIAN_SQL["t2_workload"] = ("first_resolved_at", *_t2_sql())
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

"""Correctness suite for the blended KPIs (AFTERSALES.md §4 P1 cost per repair, P5 stock turns,
P7 service revenue, T3 tickets per head): each bundle report through the engine against
hand-written SQL on generated data (bench/_report_data_blend.py) on each database, and the
same rows on both databases. The hand SQL stacks the two populations and groups once; the
ratio of its sums is computed here."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.reports.query import FilterClause
from engine.reports.service import ReportService
from tests.conftest import _clean_committed_data
from tests.engine.reports.conftest import TICKETS
from tests.engine.reports.test_kpi_reports import _normal

blend: Any = importlib.import_module("_report_data_blend")  # bench/ is on sys.path (conftest)
report_data: Any = importlib.import_module("_report_data")
NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 1, 1), date(2025, 6, 30)
SINCE = {"since_at": datetime(2024, 12, 20, 8, 0, tzinfo=UTC), "since_day": date(2024, 12, 20)}
_SQLITE_ROWS: dict[str, list[tuple[Any, ...]]] = {}


@pytest.fixture(scope="module")
def blend_data(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    blend.install(migrated_engine)
    blend.load(migrated_engine, TICKETS)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


@pytest.fixture(scope="module")
def service(blend_data: sa.Engine) -> ReportService:
    return ReportService(blend_data, clock=lambda: NOW)


def _ratio(top: Any, bottom: Any) -> float | None:
    return float(top or 0) / float(bottom) if bottom else None


# hand rows (the groups, the populations' sums) -> the report's columns
EXPECTED: dict[str, Callable[[Sequence[Any]], tuple[Any, ...]]] = {
    "p1_cost_per_repair": lambda r: (r[0], r[1], _ratio(r[1], r[2]), r[2]),
    "p5_stock_turns": lambda r: (r[0], r[1], r[2], _ratio(r[2], r[3]), r[3], r[4]),
    "p7_service_revenue": lambda r: (r[0], r[1], float(r[1] or 0) + float(r[2] or 0), r[2]),
    "t3_tickets_per_head": lambda r: (r[0], r[1], _ratio(r[1], r[2]), r[2]),
}
WIDTH = {"p1_cost_per_repair": 1, "p5_stock_turns": 2, "p7_service_revenue": 1,
         "t3_tickets_per_head": 1}  # fmt: skip


def _by_groups(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda row: tuple((v is None, v) for v in row[:width]))


def _compare(
    service: ReportService, engine: sa.Engine, key: str, filters: list[FilterClause], **hand: Any
) -> list[tuple[Any, ...]]:
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=filters)
    params = {**report_data.period_params(FIRST, LAST), "first": FIRST, "last": LAST, **SINCE}
    params.update(hand)
    sql = blend.hand_sql(key, engine.dialect.name, region="region" in hand)
    with engine.connect() as conn:
        raw = conn.execute(sa.text(sql), params).all()
    expected = _by_groups(_normal([EXPECTED[key](row) for row in raw]), WIDTH[key])
    engine_rows = _by_groups(_normal(result.rows), WIDTH[key])
    assert engine_rows == expected
    assert engine_rows, f"{key}: the generated data should give rows"
    return engine_rows


def _period(key: str) -> list[FilterClause]:
    if key not in blend.DATE_FIELDS:  # P5: the trailing 12 months of the report itself
        return []
    return [FilterClause(blend.DATE_FIELDS[key], "between", [FIRST.isoformat(), LAST.isoformat()])]


@pytest.mark.parametrize("key", blend.KPI_KEYS)
def test_engine_equals_hand_sql(service: ReportService, blend_data: sa.Engine, key: str) -> None:
    rows = _compare(service, blend_data, key, _period(key))
    if blend_data.dialect.name == "sqlite":
        _SQLITE_ROWS[key] = rows
    elif key in _SQLITE_ROWS:  # the same data on both databases gives the same rows
        assert rows == _SQLITE_ROWS[key]


def test_groups_of_the_second_population_only(
    service: ReportService, blend_data: sa.Engine
) -> None:
    p1 = _compare(service, blend_data, "p1_cost_per_repair", _period("p1_cost_per_repair"))
    february = next(row for row in p1 if row[0] == date(2025, 2, 1))
    assert february[1] is None and february[2] == 0 and february[3] > 0  # repairs, no cost
    p5 = _compare(service, blend_data, "p5_stock_turns", [])
    idle = next(row for row in p5 if row[:2] == ("BW02", f"BP{blend.PARTS:02d}"))
    assert idle[2] is None and idle[3] == 0 and idle[5] > 0  # in stock, never consumed
    p7 = _compare(service, blend_data, "p7_service_revenue", _period("p7_service_revenue"))
    northwest = next(row for row in p7 if row[0] == "northwest")
    assert northwest[1] is None and northwest[3] > 0  # contracts, no visit


@pytest.mark.parametrize(
    ("key", "field"),
    [("p1_cost_per_repair", "s.warehouse.region"), ("p7_service_revenue", "t.region")],
)
def test_a_region_filter_reaches_both_populations(
    service: ReportService, blend_data: sa.Engine, key: str, field: str
) -> None:
    filters = [*_period(key), FilterClause(field, "eq", "east")]
    _compare(service, blend_data, key, filters, region="east")


def test_tickets_per_head_repeats_the_heads_on_every_month(
    service: ReportService, blend_data: sa.Engine
) -> None:
    rows = _compare(service, blend_data, "t3_tickets_per_head", _period("t3_tickets_per_head"))
    assert len(rows) == 6 and {row[3] for row in rows} == {8}  # 10 staff, 2 of them off


def test_the_nightly_job_writes_the_stock_snapshot(blend_data: sa.Engine) -> None:
    from engine.jobs.types import JobContext
    from engine.reports.snapshots import SNAPSHOT_JOB, take_snapshot
    from engine.storage.uow import UnitOfWork

    day, at = date(2025, 12, 21), datetime(2025, 12, 21, 15, 59, 5, tzinfo=UTC)  # 23:59 +8
    payload = {"app": "aftersales", "report": "p5_stock_snapshot", "day": day.isoformat()}
    with UnitOfWork(blend_data, clock=lambda: at) as uow:
        take_snapshot(JobContext(uow=uow, job_id=1, kind=SNAPSHOT_JOB, payload=payload,
                                 attempt=1, now=at, worker="test"))  # fmt: skip
        uow.commit()
    written = ("SELECT warehouse, spare_part, qty, value FROM aftersales__stock_snapshot "
               "WHERE snapshot_date = :day ORDER BY 1, 2")  # fmt: skip
    ledger = ("SELECT s.warehouse, s.spare_part, SUM(m.qty), SUM(m.qty * m.unit_cost) FROM "
              "aftersales__stock_move m JOIN aftersales__stock s ON s.id = m.stock WHERE "
              "m.deleted_at IS NULL GROUP BY s.warehouse, s.spare_part ORDER BY 1, 2")  # fmt: skip
    with blend_data.connect() as conn:
        rows = _normal(conn.execute(sa.text(written), {"day": day}).all())
        assert rows and rows == _normal(conn.execute(sa.text(ledger)).all())

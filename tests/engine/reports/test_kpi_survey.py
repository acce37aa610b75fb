"""Correctness suite for the survey KPIs (AFTERSALES §4 Q4, Q4 response rate, Q5, Q6).

The bundle's reports run through the engine and hand-written SQL (bench/_report_data_survey.py,
shared with bench/reports.py) runs on the same generated data (bench/_report_data.py tickets
plus its surveys). Rows must be equal to 9 significant digits on each database, and equal
between the databases when both run in one session. The population comes from the survey's
ticket and customer: cancelled tickets, internal customers and duplicates are out, whatever
the survey says.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.reports.query import FilterClause
from engine.reports.service import ReportService
from tests.conftest import ROOT, _clean_committed_data
from tests.engine.reports.conftest import TICKETS, report_data
from tests.engine.reports.test_kpi_reports import _normal

sys.path.insert(0, str(ROOT / "bench"))
import _report_data_survey as survey_data  # type: ignore[import-not-found]  # noqa: E402

NOW = datetime(2025, 12, 20, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 3, 1), date(2025, 8, 31)
SURVEYS, ANSWERED = survey_data.SURVEYS, survey_data.ANSWERED
HAND_SQL: dict[str, tuple[str, str]] = survey_data.HAND_SQL  # key → (event date, hand SQL)
_SQLITE_ROWS: dict[str, list[tuple[Any, ...]]] = {}


@pytest.fixture(scope="module")
def survey_engine(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    report_data.install(migrated_engine)
    report_data.load(migrated_engine, TICKETS)
    survey_data.load_surveys(migrated_engine)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


@pytest.fixture(scope="module")
def service(survey_engine: sa.Engine) -> ReportService:
    return ReportService(survey_engine, clock=lambda: NOW)


def _run(service: ReportService, key: str, event: str) -> list[tuple[Any, ...]]:
    period = [FilterClause(event, "between", [FIRST.isoformat(), LAST.isoformat()])]
    result = service.run(app="aftersales", key=key, actor=None, extra_filters=period)
    return _normal(result.rows)


def _hand(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        params = report_data.period_params(FIRST, LAST)
        return _normal(conn.execute(sa.text(sql), params).all())


@pytest.mark.parametrize("key", list(HAND_SQL))
def test_engine_equals_hand_sql(service: ReportService, survey_engine: sa.Engine, key: str) -> None:
    event, sql = HAND_SQL[key]
    rows = _run(service, key, event)
    assert rows == _hand(survey_engine, sql)
    assert len(rows) >= 2, f"{key}: the generated data should give several groups"
    assert sum(r[1] for r in rows) >= 30, f"{key}: too few answers to mean anything"
    if survey_engine.dialect.name == "sqlite":
        _SQLITE_ROWS[key] = rows
    elif key in _SQLITE_ROWS:
        assert rows == _SQLITE_ROWS[key]


def test_excluded_surveys_exist_and_stay_out(
    service: ReportService, survey_engine: sa.Engine
) -> None:
    """The data holds answers of internal customers and of cancelled tickets: the population
    filter must be what keeps them out (the test fails if the generator stops making them)."""
    everything = (
        "SELECT COUNT(*) FROM aftersales__survey_response s WHERE s.csat IS NOT NULL AND "
        f"{ANSWERED}"
    )
    kept = f"SELECT COUNT(*) {SURVEYS} AND s.csat IS NOT NULL AND {ANSWERED}"
    with survey_engine.connect() as conn:
        params = report_data.period_params(FIRST, LAST)
        total = conn.execute(sa.text(everything), params).scalar_one()
        population = conn.execute(sa.text(kept), params).scalar_one()
    assert population < total
    assert sum(r[1] for r in _run(service, "q4_csat", "responded_at")) == population


def test_nps_is_promoters_minus_detractors_with_passives_in_the_denominator(
    service: ReportService,
) -> None:
    for _tier, answered, promoters, passives, detractors, nps in _run(
        service, "q5_nps", "responded_at"
    ):
        assert promoters + passives + detractors == answered
        assert nps == pytest.approx((promoters - detractors) * 100 / answered)

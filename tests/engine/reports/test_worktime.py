"""`WORKTIMEADD` in report expressions (engine/reports/worktime.py) on the after-sales bundle's
calendars: CN-8x5 (lunch 12:00-13:00, evenings off) and 7x24, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError
from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.reports.service import ReportService
from engine.reports.spec import ReportSpec
from tests.conftest import _clean_committed_data
from tests.engine.reports.conftest import report_data  # type: ignore[attr-defined]

ADMIN = Actor(user_id=1, username="admin", is_admin=True)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = 'IF(sla_policy_key = "c7x24", "always", "cn_8x5")'
DUE_SOON = f'response_by >= NOW() and response_by <= WORKTIMEADD(NOW(), 2, "hour", {CALENDAR})'


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A June 2025 instant on the Shanghai clock (Mon 9th, Tue 10th)."""
    return datetime(2025, 6, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


# number, SLA policy, response_by (Mon 2025-06-09 11:30 and 17:00 are the clocks used)
TICKETS = [
    ("lunch", "standard", local(9, 13, 15)),  # 11:30 + 30 min + lunch + 15 min: 45 bmin
    ("afternoon", "standard", local(9, 14, 15)),  # 1 h 45 bmin
    ("three_hours", "standard", local(9, 15, 30)),  # exactly 3 bh after 11:30
    ("round_clock", "c7x24", local(9, 14, 15)),  # 2 h 45 min on 7x24
    ("next_morning", "standard", local(10, 9, 30)),  # from 17:00: 1 h today + 30 min Tue
    ("evening_7x24", "c7x24", local(9, 18, 30)),  # from 17:00: 1 h 30 on 7x24
    ("late_7x24", "c7x24", local(9, 19, 30)),  # from 17:00: 2 h 30 on 7x24
]


@pytest.fixture(scope="module")
def engine(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    report_data.install(migrated_engine)
    table = sa.Table(report_data.TICKET, sa.MetaData(), autoload_with=migrated_engine)
    stamp = local(1, 9)
    rows = [
        {"number": number, "sla_policy_key": policy, "response_by": due, "status": "new",
         "status_category": "open", "created_at": stamp, "updated_at": stamp, "version": 1}
        for number, policy, due in TICKETS
    ]  # fmt: skip
    with migrated_engine.begin() as conn:
        conn.execute(table.insert(), rows)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


def spec(*filters: str, **extra: Any) -> ReportSpec:
    return ReportSpec.model_validate(
        {"key": "due", "label": "Due", "dataset": {"form": "ticket"},
         "dimensions": [{"key": "number", "field": "number"}],
         "filters": [{"expr": f} for f in filters], "sort": [{"by": "number"}], **extra}
    )  # fmt: skip


def numbers(runs: ReportService, report: ReportSpec) -> set[str]:
    with runs.unit() as uow:
        compiled = runs.compile(uow, app="aftersales", spec=report)
        result, _ = runs.result(uow, compiled, actor=ADMIN)
    return {row[0] for row in result.rows}


@pytest.fixture
def runs(engine: sa.Engine) -> tuple[ReportService, list[datetime]]:
    clock = [local(9, 11, 30)]
    return ReportService(engine, registry=DefinitionRegistry(), clock=lambda: clock[0]), clock


def test_the_window_follows_each_rows_calendar(runs: tuple[ReportService, list[datetime]]) -> None:
    service, clock = runs
    # 11:30 + 2 bh is 14:30 on CN-8x5 (over the lunch break), 13:30 on 7x24
    assert numbers(service, spec(DUE_SOON)) == {"lunch", "afternoon"}
    # the clock moved to 17:00: the cached 11:30 result must not be served; 2 bh on CN-8x5
    # run into Tuesday 10:00 (the evening is off), on 7x24 they end at 19:00
    clock[0] = local(9, 17)
    assert numbers(service, spec(DUE_SOON)) == {"next_morning", "evening_7x24"}


def test_the_clock_variables_are_not_cached_across_minutes(
    runs: tuple[ReportService, list[datetime]],
) -> None:
    service, clock = runs
    variable = 'response_by >= $now and response_by <= WORKTIMEADD($now, 2, "hour", "always")'
    assert numbers(service, spec(variable)) == {"lunch"}  # up to 13:30 on 7x24
    clock[0] = local(9, 17)
    assert numbers(service, spec(variable)) == {"evening_7x24"}  # up to 19:00


def test_a_literal_calendar_and_other_units(runs: tuple[ReportService, list[datetime]]) -> None:
    service, _ = runs
    standard = 'response_by <= WORKTIMEADD(NOW(), 180, "minute", "cn_8x5")'
    always = 'response_by <= WORKTIMEADD($now, 10800, "second", "always")'
    after_noon = 'response_by > WORKTIMEADD(TODAY(), 0, "hour", "always")'
    expected = {"lunch", "afternoon", "three_hours", "round_clock"}
    assert numbers(service, spec(standard, after_noon)) == expected  # up to 15:30
    assert numbers(service, spec(always, after_noon)) == {"lunch", "afternoon", "round_clock"}
    fixed = 'response_by <= WORKTIMEADD("2025-06-09T03:30:00", 1, "hour", "cn_8x5")'
    assert numbers(service, spec(fixed)) == {"lunch"}  # a constant start: 13:30 local


def test_a_conditional_measure_counts_in_the_window(
    runs: tuple[ReportService, list[datetime]],
) -> None:
    service, _ = runs
    report = spec(
        measures=[{"key": "due_soon", "aggregate": "count", "filter": DUE_SOON}],
        dimensions=[],
        sort=[],
    )
    with service.unit() as uow:
        compiled = service.compile(uow, app="aftersales", spec=report)
        result, _ = service.result(uow, compiled, actor=ADMIN)
    assert result.rows[0][0] == 2
    assert compiled.clock_free is False


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ('response_by <= WORKTIMEADD(created_at, 2, "hour", "cn_8x5")', "report.worktime-time"),
        ('response_by <= WORKTIMEADD(NOW(), 2, "day", "cn_8x5")', "report.worktime-unit"),
        ('response_by <= WORKTIMEADD(NOW(), hold_bsec, "hour", "cn_8x5")',
         "report.worktime-args"),
        ('response_by <= WORKTIMEADD(NOW(), 2, "hour", "cn_5x8")', "report.unknown-calendar"),
        ('response_by <= WORKTIMEADD(NOW(), 2, "hour")', "report.worktime-args"),
        ('response_by <= WORKTIMEADD(NOW(), 2, "hour", escalation_level)', "report.bad-expr"),
    ],
)  # fmt: skip
def test_bad_calls_are_definition_errors(
    runs: tuple[ReportService, list[datetime]], expr: str, code: str
) -> None:
    service, _ = runs
    with pytest.raises(DefinitionError) as caught, service.unit() as uow:
        service.compile(uow, app="aftersales", spec=spec("number <> null", expr))
    assert [(p.code, p.path) for p in caught.value.problems] == [(code, "/filters/1/expr")]


def test_a_calendar_change_is_a_new_result(
    runs: tuple[ReportService, list[datetime]], engine: sa.Engine
) -> None:
    service, _ = runs
    assert numbers(service, spec(DUE_SOON)) == {"lunch", "afternoon"}
    with service.unit() as uow:
        record = uow.definitions.get_current(app="aftersales", kind="calendars", key="cn_8x5")
        body = dict(record.body)
        body["weekly_hours"] = [h for h in body["weekly_hours"] if h["start"] != "13:00"]
        digest = "0" * 64  # any new digest: a new version
        uow.definitions.publish(app="aftersales", kind="calendars", key="cn_8x5", body=body,
                                digest=digest, actor=None)  # fmt: skip
        uow.commit()
    # mornings only: 11:30 + 2 bh is Tuesday 10:30, so every standard ticket up to then
    expected = {"lunch", "afternoon", "three_hours", "next_morning"}
    assert numbers(service, spec(DUE_SOON)) == expected

"""Snapshot tables written by jobs: the nightly backlog snapshot of the after-sales bundle is
queued by the import, appends the live backlog once per day, queues the next day, and the
trend report reads the history (through the cache, invalidated by the job's writes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError
from engine.jobs.providers import collect_handlers
from engine.jobs.types import JobContext
from engine.registry import DefinitionRegistry
from engine.reports.service import ReportService
from engine.reports.snapshots import SNAPSHOT_JOB, take_snapshot, write_snapshot
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 1, 1)
AT_DAY1 = datetime(2026, 1, 1, 23, 59, 5, tzinfo=SHANGHAI).astimezone(UTC)


def queued(engine: sa.Engine) -> list[tuple[str, datetime, dict[str, Any]]]:
    query = (
        sa.select(job_queue.c.key, job_queue.c.due_at, job_queue.c.payload)
        .where(job_queue.c.kind == SNAPSHOT_JOB, job_queue.c.status == "queued")
        .order_by(job_queue.c.due_at)
    )
    with engine.connect() as conn:
        return [(str(k), d.astimezone(UTC), dict(p)) for k, d, p in conn.execute(query)]


def run_job(engine: sa.Engine, *, day: date, now: datetime) -> None:
    with UnitOfWork(engine, clock=lambda: now) as uow:
        payload = {"app": "aftersales", "report": "t1_backlog_snapshot", "day": day.isoformat()}
        take_snapshot(JobContext(uow=uow, job_id=1, kind=SNAPSHOT_JOB, payload=payload,
                                 attempt=1, now=now, worker="test"))  # fmt: skip
        uow.commit()


def snapshot_rows(engine: sa.Engine) -> list[tuple[date, int]]:
    query = sa.text(
        "SELECT snapshot_date, sum(tickets) FROM aftersales__backlog_snapshot "
        "GROUP BY snapshot_date ORDER BY snapshot_date"
    )
    with engine.connect() as conn:
        return [(_day(d), int(n)) for d, n in conn.execute(query)]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def live_backlog(engine: sa.Engine, now: datetime) -> tuple[int, int]:
    """(tickets, rows) of the live snapshot query at `now`."""
    runs = ReportService(engine, registry=DefinitionRegistry(), clock=lambda: now)
    result = runs.run(app="aftersales", key="t1_backlog_snapshot", actor=None)
    return sum(r[result.index("tickets")] for r in result.rows), len(result.rows)


def test_the_handler_is_provided() -> None:
    assert collect_handlers()[SNAPSHOT_JOB] is take_snapshot


def test_the_import_queues_the_first_run_at_2359(aftersales_data: sa.Engine) -> None:
    chains = [q for q in queued(aftersales_data) if "t1_backlog_snapshot" in q[0]]
    assert len(chains) == 1
    key, due_at, payload = chains[0]
    local = due_at.astimezone(SHANGHAI)
    assert (local.hour, local.minute) == (23, 59)
    assert payload["day"] == local.date().isoformat()
    assert key == f"report-snapshot:aftersales:t1_backlog_snapshot@{payload['day']}"


def test_a_day_is_appended_once_and_the_next_day_queued(aftersales_data: sa.Engine) -> None:
    tickets, rows = live_backlog(aftersales_data, AT_DAY1)
    assert tickets > 0
    run_job(aftersales_data, day=DAY1, now=AT_DAY1)
    assert snapshot_rows(aftersales_data) == [(DAY1, tickets)]
    with aftersales_data.connect() as conn:
        count = "SELECT count(*) FROM aftersales__backlog_snapshot"
        assert conn.execute(sa.text(count)).scalar_one() == rows
    next_day = [q for q in queued(aftersales_data) if q[2]["day"] == "2026-01-02"]
    assert [q[1] for q in next_day] == [AT_DAY1.replace(second=0) + timedelta(days=1)]
    run_job(aftersales_data, day=DAY1, now=AT_DAY1 + timedelta(minutes=5))  # a retry
    assert snapshot_rows(aftersales_data) == [(DAY1, tickets)]


def test_the_trend_reads_the_history(aftersales_data: sa.Engine) -> None:
    runs = ReportService(aftersales_data, registry=DefinitionRegistry(), clock=lambda: AT_DAY1)

    def trend() -> dict[date, float]:
        result = runs.run(app="aftersales", key="t1_backlog_trend", actor=None)
        totals: dict[date, float] = {}
        for row in result.rows:
            totals[row[0]] = totals.get(row[0], 0) + row[result.index("tickets")]
        return totals

    before = trend()
    later = AT_DAY1 + timedelta(days=1)
    run_job(aftersales_data, day=date(2026, 1, 2), now=later)
    after = trend()  # the job's write bumped the form's data version: not the cached result
    assert after == {d: float(n) for d, n in snapshot_rows(aftersales_data)}
    assert len(after) == len(before) + 1
    assert after[date(2026, 1, 2)] == live_backlog(aftersales_data, later)[0]


def test_bad_snapshot_definitions(aftersales_data: sa.Engine) -> None:
    runs = ReportService(aftersales_data)
    with runs.unit() as uow:
        spec = runs.installed(uow, app="aftersales", key="t1_backlog_snapshot")
        assert spec.snapshot is not None
        cases = [
            (spec.snapshot.model_copy(update={"form": "nope"}), "/snapshot/form"),
            (spec.snapshot.model_copy(update={"fields": {"tickets": "count"}}), "/snapshot"),
            (spec.snapshot.model_copy(update={"fields": {"nope": "tickets"}}),
             "/snapshot/fields/nope"),
        ]  # fmt: skip
        for snapshot, path in cases:
            bad = spec.model_copy(update={"snapshot": snapshot})
            with pytest.raises(DefinitionError) as err:
                write_snapshot(uow, app="aftersales", spec=bad, day=DAY1, now=AT_DAY1)
            assert [(p.code, p.path) for p in err.value.problems][:1] == [
                ("report.bad-snapshot", path)
            ]

"""Snapshot tables written by jobs: a report with `snapshot:` appends its rows to a form once
a day, so that trend reports can read a history the live data no longer holds (the backlog at
23:59 of every day, per team, region, priority and aging bucket).

Each report's chain is one job at a time (kind `report.snapshot`, key
`report-snapshot:<app>:<report>@<local date>`): the job runs the report with full access at
its clock, writes the rows with `<date_field>` = the local day it was due for, and queues the
next day's run in the same transaction. A day that already has rows is not written twice, so
a retried job adds nothing. An import queues the first run of every snapshot report (the
installer's first runs); a re-import keeps a chain that is already queued.

Bad definitions fail the job with `report.bad-snapshot` (the form or a target field is
missing): the worker records the error and the chain stops until the next import.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.errors import DefinitionError, NotFoundError, Problem
from engine.jobs.types import JobContext, JobHandler
from engine.registry import DefinitionRegistry
from engine.reports.cache import bump_data_version
from engine.reports.schedule import JobChain, daily, installed, installed_all, local_day, next_run
from engine.reports.service import REPORT_KIND, ReportService
from engine.reports.spec import ReportSpec, Snapshot
from engine.storage._record_layout import build_record_layout
from engine.storage.form_records import FormRecordStore
from engine.storage.uow import UnitOfWork

SNAPSHOT_JOB = "report.snapshot"
BAD_SNAPSHOT = "report.bad-snapshot"


def _chain(app: str, report: str) -> JobChain:
    return JobChain.of(SNAPSHOT_JOB, "report-snapshot", app, report)


def next_due(spec: ReportSpec, after: datetime) -> tuple[datetime, date]:
    """The first daily run strictly after `after` (UTC) and the local day it is for."""
    assert spec.snapshot is not None
    schedule = daily(spec.snapshot.at, spec.timezone)
    due = next_run(schedule, after)
    return due, local_day(schedule, due)


def schedule_snapshot(
    conn: sa.Connection, *, app: str, report: str, due_at: datetime, day: date
) -> None:
    payload = {"app": app, "report": report, "day": day.isoformat()}
    _chain(app, report).queue(conn, due_at=due_at, suffix=day.isoformat(), payload=payload)


def schedule_app_snapshots(uow: UnitOfWork, *, app: str, now: datetime) -> int:
    """Queue the first run of every snapshot report of `app` without a queued chain."""
    started = 0
    for spec in installed_all(uow, ReportSpec, app=app, kind=REPORT_KIND):
        if spec.snapshot is None or _chain(app, spec.key).is_running(uow.conn):
            continue
        due_at, day = next_due(spec, now)
        schedule_snapshot(uow.conn, app=app, report=spec.key, due_at=due_at, day=day)
        started += 1
    return started


def write_snapshot(
    uow: UnitOfWork, *, app: str, spec: ReportSpec, day: date, now: datetime,
    registry: DefinitionRegistry | None = None,
) -> int:  # fmt: skip
    """Run `spec` with full access at `now` and append its rows for `day`; the number of rows
    written (0 when the day already has rows).

    Raises:
        DefinitionError: `report.bad-snapshot` (path into the report's `snapshot`).
    """
    snapshot = spec.snapshot
    assert snapshot is not None
    registry = registry or DefinitionRegistry()
    try:
        target = registry.form(uow, app=app, key=snapshot.form)
    except NotFoundError as err:
        raise _bad("/snapshot/form", f"app {app!r} has no form {snapshot.form!r}") from err
    layout = build_record_layout(app=app, form=target.compiled, forms=target.forms)
    result_keys = _check_fields(snapshot, layout.by_key, spec)
    day_column = layout.main.c[layout.by_key[snapshot.date_field].columns[0]]
    taken = sa.select(layout.main.c.id).where(day_column == day, layout.main.c.deleted_at.is_(None))
    if uow.conn.execute(taken.limit(1)).first() is not None:
        return 0
    runs = ReportService(uow.conn.engine, registry=registry, clock=lambda: now)
    compiled = runs.compile(uow, app=app, spec=spec)
    result, _ = runs.result(uow, compiled, actor=None)
    indexes = {key: result.index(key) for key in result_keys}
    records: list[Mapping[str, Any]] = [
        {snapshot.date_field: day}
        | {snapshot.fields.get(key, key): row[i] for key, i in indexes.items()}
        for row in result.rows
    ]
    store = FormRecordStore(uow.conn, layout=layout, clock=lambda: now)
    store.insert_many(records=records, actor=None)
    if records:  # cached trend reports over the target form must see the new day
        bump_data_version(uow.conn, app=app, form=snapshot.form, now=now)
    return len(records)


def _check_fields(snapshot: Snapshot, fields: Mapping[str, Any], spec: ReportSpec) -> list[str]:
    """The result columns to copy; every target field must exist."""
    keys = [d.key for d in spec.dimensions] + [m.key for m in spec.measures]
    problems = [
        Problem(BAD_SNAPSHOT, f"/snapshot/fields/{key}", f"no result column {key!r}")
        for key in snapshot.fields
        if key not in keys
    ]
    for key in [snapshot.date_field] + [snapshot.fields.get(k, k) for k in keys]:
        if key not in fields:
            message = f"form {snapshot.form!r} has no field {key!r}"
            problems.append(Problem(BAD_SNAPSHOT, "/snapshot", message))
    if problems:
        raise DefinitionError(problems)
    return keys


def _bad(path: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(BAD_SNAPSHOT, path, message)])


def take_snapshot(ctx: JobContext) -> None:
    """The `report.snapshot` handler: write the day's rows, queue the next day."""
    app, key = str(ctx.payload["app"]), str(ctx.payload["report"])
    spec = installed(ctx.uow, ReportSpec, app=app, kind=REPORT_KIND, key=key)
    if spec is None or spec.snapshot is None:
        return  # the report was retired or lost its snapshot: the chain ends
    day = date.fromisoformat(str(ctx.payload["day"]))
    write_snapshot(ctx.uow, app=app, spec=spec, day=day, now=ctx.now)
    end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(spec.timezone))
    due_at, next_day = next_due(spec, max(ctx.now, end_of_day))
    schedule_snapshot(ctx.uow.conn, app=app, report=key, due_at=due_at, day=next_day)


def job_handlers() -> Mapping[str, JobHandler]:
    """The worker's handlers from this module (engine/jobs/providers.py)."""
    return {SNAPSHOT_JOB: take_snapshot}


__all__ = [
    "BAD_SNAPSHOT",
    "SNAPSHOT_JOB",
    "job_handlers",
    "next_due",
    "schedule_app_snapshots",
    "take_snapshot",
    "write_snapshot",
]

"""Scheduled jobs of the report engine: when a `Schedule` next fires in its time zone, and the
job chains that alerts, snapshots and deliveries keep.

A chain is one job at a time whose key starts with the chain's prefix. A link queues its
successor in its own transaction (so a retried link queues nothing twice: the key is taken
while the successor is queued); an import starts a chain only when none of its links is
queued or running; a link that finds its definition gone queues nothing, so the chain ends.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.jobs.queue import enqueue
from engine.reports.spec import Schedule
from engine.spec_base import SpecModel
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork

SpecT = TypeVar("SpecT", bound=SpecModel)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_run(schedule: Schedule, after: datetime) -> datetime:
    """The first run of `schedule` strictly after `after`, in UTC."""
    zone = ZoneInfo(schedule.timezone)
    hour, minute = (int(part) for part in schedule.at.split(":"))
    local = after.astimezone(zone)
    at = time(hour, minute)
    day = _candidate(schedule, local.date())
    if datetime.combine(day, at, tzinfo=zone) <= local:
        day = _candidate(schedule, day + timedelta(days=1))
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _candidate(schedule: Schedule, start: date) -> date:
    """The first day on or after `start` the schedule runs on."""
    if schedule.every == "week":
        assert schedule.weekday is not None  # the model requires it
        return start + timedelta(days=(WEEKDAYS.index(schedule.weekday) - start.weekday()) % 7)
    if schedule.every == "month":
        day = _month_day(schedule, start.year, start.month)
        if day >= start:
            return day
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return _month_day(schedule, year, month)
    return start


def _month_day(schedule: Schedule, year: int, month: int) -> date:
    """The schedule's `day` in that month, or the month's last day when it is shorter."""
    assert schedule.day is not None  # the model requires it
    return date(year, month, min(schedule.day, calendar.monthrange(year, month)[1]))


def local_day(schedule: Schedule, moment: datetime) -> date:
    """The day `moment` falls on in the schedule's time zone."""
    return moment.astimezone(ZoneInfo(schedule.timezone)).date()


def daily(at: str, timezone: str) -> Schedule:
    """A schedule that runs every day at `at` (HH:MM) in `timezone`."""
    return Schedule(every="day", at=at, timezone=timezone)


def next_interval(last: datetime | None, *, minutes: int, now: datetime) -> datetime:
    """Every `minutes` after the last run; `now` when there was none yet."""
    return now if last is None else last + timedelta(minutes=minutes)


def installed(
    uow: UnitOfWork, model: type[SpecT], *, app: str, kind: str, key: str
) -> SpecT | None:
    """The current definition a chain link runs for; None once it is retired (the chain ends)."""
    try:
        record = uow.definitions.get_current(app=app, kind=kind, key=key)
    except NotFoundError:
        return None
    return model.model_validate(record.body)


def installed_all(uow: UnitOfWork, model: type[SpecT], *, app: str, kind: str) -> list[SpecT]:
    """The current definitions of `kind` in `app`, whose chains an import starts."""
    keys = [record.key for record in uow.definitions.list_definitions(app=app, kind=kind)]
    found = [installed(uow, model, app=app, kind=kind, key=key) for key in keys]
    return [spec for spec in found if spec is not None]


@dataclass(frozen=True, slots=True)
class JobChain:
    """The jobs of kind `kind` whose keys start with `prefix`: one link queued at a time."""

    kind: str
    prefix: str

    @classmethod
    def of(cls, kind: str, name: str, *parts: str) -> JobChain:
        """The chain `<name>:<part>:…@`; `@` ends the prefix so `a` never matches `ab`."""
        return cls(kind, ":".join((name, *parts)) + "@")

    def queue(
        self, conn: sa.Connection, *, due_at: datetime, suffix: str, payload: Mapping[str, Any]
    ) -> int | None:
        """Queue the link `<prefix><suffix>` (nothing while that key is queued or running)."""
        return enqueue(conn, kind=self.kind, payload=payload, due_at=due_at,
                       key=self.prefix + suffix)  # fmt: skip

    def is_running(self, conn: sa.Connection) -> bool:
        """Whether a link is queued or running: a re-import must not start a second chain."""
        escaped = self.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            sa.select(job_queue.c.id)
            .where(
                job_queue.c.kind == self.kind,
                job_queue.c.status.in_(("queued", "running")),
                job_queue.c.key.like(escaped + "%", escape="\\"),
            )
            .limit(1)
        )
        return conn.execute(query).first() is not None


__all__ = [
    "WEEKDAYS",
    "JobChain",
    "daily",
    "installed",
    "installed_all",
    "local_day",
    "next_interval",
    "next_run",
]

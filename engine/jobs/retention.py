"""Retention: a queued job that purges what only grows — finished jobs, successful webhook
deliveries and read notifications — once older than the ages in the settings.

The job (kind `jobs.retention`, one key) is queued when a worker starts and queues its next run
itself: at once while a table still had more than a batch to purge (each run is a short
transaction of at most `BATCH` deletions per table), else after `retention_interval_seconds`.
Failed jobs stay (admins retry them), as do failed delivery attempts (the endpoint's failure
log) and unread notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.jobs.queue import enqueue
from engine.jobs.types import JobContext, JobHandler
from engine.settings import Settings
from engine.storage.tables_jobs import job_queue, outbox_deliveries, outbox_notifications

KIND = "jobs.retention"
KEY = "jobs.retention"
BATCH = 5000
FINISHED = ("done", "cancelled")


@dataclass(frozen=True, slots=True)
class Retention:
    jobs: timedelta
    deliveries: timedelta
    notifications: timedelta
    every: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            jobs=timedelta(days=settings.job_retention_days),
            deliveries=timedelta(days=settings.delivery_retention_days),
            notifications=timedelta(days=settings.notification_retention_days),
            every=timedelta(seconds=settings.retention_interval_seconds),
        )


def purge(conn: sa.Connection, retention: Retention, *, now: datetime) -> dict[str, int]:
    """Delete up to `BATCH` rows per table past their age; returns how many, by table."""
    j, d, n = job_queue.c, outbox_deliveries.c, outbox_notifications.c
    targets = {
        "jobs": (job_queue, [j.status.in_(FINISHED), j.finished_at < now - retention.jobs]),
        "deliveries": (outbox_deliveries, [d.ok.is_(True), d.at < now - retention.deliveries]),
        "notifications": (
            outbox_notifications,
            [n.read_at.is_not(None), n.read_at < now - retention.notifications],
        ),
    }
    counts = {}
    for name, (table, where) in targets.items():
        batch = sa.select(table.c.id).where(*where).limit(BATCH).scalar_subquery()
        counts[name] = int(conn.execute(table.delete().where(table.c.id.in_(batch))).rowcount)
    return counts


def schedule(conn: sa.Connection, *, due_at: datetime) -> int | None:
    """Queue the retention job unless it is queued or running already."""
    return enqueue(conn, kind=KIND, payload={}, due_at=due_at, key=KEY, max_attempts=3)


def retention_handler(retention: Retention) -> JobHandler:
    def run(ctx: JobContext) -> None:
        counts = purge(ctx.uow.conn, retention, now=ctx.now)
        more = any(count >= BATCH for count in counts.values())
        schedule(ctx.uow.conn, due_at=ctx.now if more else ctx.now + retention.every)

    return run


def job_handlers() -> Mapping[str, JobHandler]:
    """The provider the worker collects (engine/jobs/providers.py); settings from the env."""
    return {KIND: retention_handler(Retention.from_settings(Settings()))}


__all__ = ["BATCH", "KEY", "KIND", "Retention", "job_handlers", "purge", "schedule"]

"""The SQL of claiming: take due jobs under a lease, start, finish, retry, release, reap.

On PostgreSQL every scan locks with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take
the same row and never wait for each other. A job being run is locked by the transaction that
runs it (its first statement marks it done), so neither another worker nor the reaper can take it
while it runs. SQLite ignores the locking clause; there each claim is a single UPDATE statement,
which takes the database's write lock before it reads (the effect of BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.storage.sqltypes import UtcDateTime
from engine.storage.tables_jobs import job_queue

_REAP_BATCH = 500


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int
    due_at: datetime


def claim_due(
    conn: sa.Connection, *, worker: str, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs to `worker`, oldest due first; counts an attempt for each."""
    due = (
        sa.select(job_queue.c.id)
        .where(job_queue.c.status == "queued", job_queue.c.due_at <= now)
        .order_by(job_queue.c.due_at, job_queue.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        job_queue.update()
        .where(job_queue.c.id.in_(due.scalar_subquery()))
        .values(
            status="running",
            locked_by=worker,
            lease_until=lease_until,
            attempts=job_queue.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            job_queue.c.id,
            job_queue.c.kind,
            job_queue.c.payload,
            job_queue.c.attempts,
            job_queue.c.max_attempts,
            job_queue.c.due_at,
        )
    )
    jobs = [ClaimedJob(**row) for row in conn.execute(statement).mappings()]
    return sorted(jobs, key=lambda job: (job.due_at, job.id))


def start(conn: sa.Connection, *, job_ids: Sequence[int], worker: str, now: datetime) -> set[int]:
    """Mark jobs done in the transaction that runs them; returns those whose lease still held.

    The row locks taken here keep other workers and the reaper off the jobs until the commit; a
    job that then fails is put back by `schedule_retry` in the same transaction.
    """
    statement = (
        job_queue.update()
        .where(
            job_queue.c.id.in_(job_ids),
            job_queue.c.status == "running",
            job_queue.c.locked_by == worker,
        )
        .values(status="done", lease_until=None, finished_at=now, updated_at=now)
        .returning(job_queue.c.id)
    )
    return set(conn.execute(statement).scalars())


def schedule_retry(
    conn: sa.Connection,
    *,
    job_id: int,
    worker: str,
    now: datetime,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Put a failed attempt back in the queue at `retry_at`, or fail the job when None."""
    values: dict[str, Any] = {"last_error": error, "lease_until": None, "updated_at": now}
    if retry_at is None:
        values.update(status="failed", finished_at=now)
    else:
        values.update(status="queued", due_at=retry_at)
    statement = job_queue.update().where(
        job_queue.c.id == job_id,
        job_queue.c.status.in_(("running", "done")),  # done: by `start`, in this transaction
        job_queue.c.locked_by == worker,
    )
    return bool(conn.execute(statement.values(values)).rowcount)


def renew(
    conn: sa.Connection, *, job_ids: Sequence[int], worker: str, lease_until: datetime
) -> int:
    """Extend the lease of jobs `worker` has claimed and not started yet."""
    if not job_ids:
        return 0
    result = conn.execute(
        job_queue.update()
        .where(
            job_queue.c.id.in_(job_ids),
            job_queue.c.status == "running",
            job_queue.c.locked_by == worker,
        )
        .values(lease_until=lease_until)
    )
    return int(result.rowcount)


def release(conn: sa.Connection, *, job_ids: Sequence[int], worker: str, now: datetime) -> int:
    """Give back claimed jobs that a stopping worker will not run; their attempt is not counted."""
    if not job_ids:
        return 0
    result = conn.execute(
        job_queue.update()
        .where(
            job_queue.c.id.in_(job_ids),
            job_queue.c.status == "running",
            job_queue.c.locked_by == worker,
        )
        .values(
            status="queued",
            lease_until=None,
            attempts=job_queue.c.attempts - 1,
            updated_at=now,
        )
    )
    return int(result.rowcount)


def reap_expired(conn: sa.Connection, *, now: datetime) -> int:
    """Requeue running jobs whose lease ran out (their worker died); fail those out of attempts."""
    expired = (
        sa.select(job_queue.c.id)
        .where(job_queue.c.status == "running", job_queue.c.lease_until < now)
        .limit(_REAP_BATCH)
        .with_for_update(skip_locked=True)
    )
    exhausted = job_queue.c.attempts >= job_queue.c.max_attempts
    result = conn.execute(
        job_queue.update()
        .where(job_queue.c.id.in_(expired.scalar_subquery()))
        .values(
            status=sa.case((exhausted, "failed"), else_="queued"),
            finished_at=sa.case((exhausted, sa.literal(now, UtcDateTime())), else_=None),
            last_error=sa.literal("lease expired: worker stopped: ")
            + sa.func.coalesce(job_queue.c.locked_by, ""),
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


__all__ = ["ClaimedJob", "claim_due", "reap_expired", "release", "renew", "schedule_retry", "start"]

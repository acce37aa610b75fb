"""The SQL of claiming: take due jobs under a lease, start, finish, retry, release, reap.

On PostgreSQL every scan locks with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take
the same row and never wait for each other. A job being run is locked by the transaction that
runs it (its first statement marks it done), so neither another worker nor the reaper can take it
while it runs. SQLite ignores the locking clause; there each claim is a single UPDATE statement,
which takes the database's write lock before it reads (the effect of BEGIN IMMEDIATE).

Plans. A queue table's statistics are always stale (rows move through the statuses faster than
autoanalyze runs: 100,000 timers queued for later then made due look like none are due), and
PostgreSQL then picks plans that read the whole backlog per claim or per start:
- the claim would bitmap-scan every due job and sort them to take the first 50 (170 ms per claim
  at 100,000 due jobs); it is told to read the (due_at, id) index in order instead, which reads
  only the rows it takes plus the ones it skips;
- statements on claimed jobs by id would AND the id lookup with the partial index of running
  jobs, which keeps an entry for every job that ever ran until VACUUM; they say "leased" as
  `lease_until IS NOT NULL`, which no partial index matches (a job has a lease exactly while it
  is running: every statement that moves it out of `running` clears the lease).
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

# Planner settings of the claim and reap transactions (PostgreSQL; see the module docstring).
# The claim's commit need not wait for the disk: if the server crashes before the claim reaches
# it, the job is simply still queued, and any later commit (a job's completion) flushes it first.
_QUEUE_SCAN = sa.text(
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),"
    " set_config('synchronous_commit', 'off', true)"
)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int
    due_at: datetime


# Built once: the worker runs these for every batch and chunk of jobs.
_DUE = (
    sa.select(job_queue.c.id)
    .where(job_queue.c.status == "queued", job_queue.c.due_at <= sa.bindparam("now"))
    .order_by(job_queue.c.due_at, job_queue.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    job_queue.update()
    .where(job_queue.c.id.in_(_DUE.scalar_subquery()))
    .values(
        status="running",
        locked_by=sa.bindparam("worker"),
        lease_until=sa.bindparam("lease"),
        attempts=job_queue.c.attempts + 1,
        updated_at=sa.bindparam("now"),
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


def claim_due(
    conn: sa.Connection, *, worker: str, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs to `worker`, oldest due first; counts an attempt for each."""
    _scan_in_index_order(conn)
    params = {"now": now, "limit": limit, "worker": worker, "lease": lease_until}
    jobs = [ClaimedJob(*row) for row in conn.execute(_CLAIM, params)]
    return sorted(jobs, key=lambda job: (job.due_at, job.id))


def _scan_in_index_order(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(_QUEUE_SCAN)


def _leased_to(worker: str | sa.BindParameter[str]) -> sa.ColumnElement[bool]:
    """Claimed by `worker` (a name, or the parameter of a prebuilt statement) and not started:
    `status = 'running'`, said without naming the status so the planner looks the ids up by
    primary key only (see the module docstring)."""
    return sa.and_(job_queue.c.locked_by == worker, job_queue.c.lease_until.is_not(None))


_START = (
    job_queue.update()
    .where(
        job_queue.c.id.in_(sa.bindparam("ids", expanding=True)),
        _leased_to(sa.bindparam("worker")),
    )
    .values(
        status="done",
        lease_until=None,
        finished_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
    .returning(job_queue.c.id)
)


def start(conn: sa.Connection, *, job_ids: Sequence[int], worker: str, now: datetime) -> set[int]:
    """Mark jobs done in the transaction that runs them; returns those whose lease still held.

    The row locks taken here keep other workers and the reaper off the jobs until the commit; a
    job that then fails is put back by `schedule_retry` in the same transaction.
    """
    params = {"ids": list(job_ids), "worker": worker, "now": now}
    return set(conn.execute(_START, params).scalars())


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
        .where(job_queue.c.id.in_(job_ids), _leased_to(worker))
        .values(lease_until=lease_until)
    )
    return int(result.rowcount)


def release(conn: sa.Connection, *, job_ids: Sequence[int], worker: str, now: datetime) -> int:
    """Give back claimed jobs that a stopping worker will not run; their attempt is not counted."""
    if not job_ids:
        return 0
    result = conn.execute(
        job_queue.update()
        .where(job_queue.c.id.in_(job_ids), _leased_to(worker))
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
    _scan_in_index_order(conn)
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

"""What administrators see and do with jobs: list them by status, retry a failed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError, TransitionError
from engine.jobs.errors import JOB_KEY_ACTIVE, JOB_NOT_FOUND, JOB_NOT_RETRYABLE
from engine.storage.tables_jobs import ACTIVE_JOB_STATUSES, job_queue

RETRYABLE_STATUSES = ("failed", "cancelled")


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str
    key: str | None
    status: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    max_attempts: int
    locked_by: str | None
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def list_jobs(
    conn: sa.Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[JobRecord]:
    """Jobs newest first, optionally of one status and kind; page with `before_id`."""
    query = sa.select(job_queue).order_by(job_queue.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(job_queue.c.status == status)
    if kind is not None:
        query = query.where(job_queue.c.kind == kind)
    if before_id is not None:
        query = query.where(job_queue.c.id < before_id)
    return [JobRecord(**row) for row in conn.execute(query).mappings()]


def get_job(conn: sa.Connection, *, job_id: int) -> JobRecord:
    """Raises: NotFoundError `job.not-found`."""
    row = conn.execute(sa.select(job_queue).where(job_queue.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no job {job_id}", code=JOB_NOT_FOUND)
    return JobRecord(**row)


def retry_job(conn: sa.Connection, *, job_id: int, now: datetime) -> JobRecord:
    """Queue a failed or cancelled job again, due now, with its attempts counted from zero.

    Raises:
        NotFoundError: `job.not-found`.
        TransitionError: `job.not-retryable` unless the job is failed or cancelled.
        ConflictError: `job.key-active` when another job with the same key is queued or running.
    """
    job = get_job(conn, job_id=job_id)
    if job.status not in RETRYABLE_STATUSES:
        raise TransitionError(
            f"job {job_id} is {job.status}; only failed or cancelled jobs are retried",
            code=JOB_NOT_RETRYABLE,
        )
    if job.key is not None and _key_is_active(conn, job.key):
        raise ConflictError(f"another job with key {job.key!r} is pending", code=JOB_KEY_ACTIVE)
    conn.execute(
        job_queue.update()
        .where(job_queue.c.id == job_id, job_queue.c.status == job.status)
        .values(
            status="queued",
            due_at=now,
            attempts=0,
            locked_by=None,
            lease_until=None,
            finished_at=None,
            updated_at=now,
        )
    )
    return get_job(conn, job_id=job_id)


def _key_is_active(conn: sa.Connection, key: str) -> bool:
    query = sa.select(job_queue.c.id).where(
        job_queue.c.key == key, job_queue.c.status.in_(ACTIVE_JOB_STATUSES)
    )
    return conn.execute(query.limit(1)).first() is not None


__all__ = ["RETRYABLE_STATUSES", "JobRecord", "get_job", "list_jobs", "retry_job"]

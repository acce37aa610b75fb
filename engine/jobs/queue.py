"""The job queue: enqueue, cancel and reschedule in the caller's transaction.

A job is a row of `job_queue` with a kind, a JSON payload and a due time. Workers
(engine/jobs/worker.py) claim due rows and run the handler registered for the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.storage.sqltypes import utc_now
from engine.storage.tables_jobs import job_queue

# Literal SQL, not bound values: after a few executions PostgreSQL switches to a generic plan
# and can no longer match `status IN ($1, $2)` to the partial unique index (ON CONFLICT fails).
_ACTIVE_KEY_WHERE = sa.text("status IN ('queued', 'running') AND key IS NOT NULL")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (UTC)")


def enqueue(
    conn: sa.Connection,
    *,
    kind: str,
    payload: Mapping[str, Any],
    due_at: datetime,
    key: str | None = None,
    max_attempts: int = 10,
) -> int | None:
    """Queue a job in the caller's transaction; it runs once that transaction commits.

    `payload` must be JSON-serialisable. While a job with the same `key` is queued or running,
    nothing is inserted and None is returned; otherwise the new job's id.
    """
    _require_aware(due_at, "due_at")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    now = utc_now()
    values = {
        "kind": kind,
        "payload": dict(payload),
        "key": key,
        "status": "queued",
        "due_at": due_at,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
        "updated_at": now,
    }
    if key is None:
        inserted = conn.execute(job_queue.insert().values(values).returning(job_queue.c.id))
        return int(inserted.scalar_one())
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(job_queue)
        .values(values)
        .on_conflict_do_nothing(index_elements=["key"], index_where=_ACTIVE_KEY_WHERE)
        .returning(job_queue.c.id)
    )
    new_id = conn.execute(statement).scalar_one_or_none()
    return None if new_id is None else int(new_id)


def cancel(conn: sa.Connection, *, key: str) -> int:
    """Cancel the queued jobs with `key` (a running one finishes); returns how many."""
    now = utc_now()
    result = conn.execute(
        job_queue.update()
        .where(job_queue.c.key == key, job_queue.c.status == "queued")
        .values(status="cancelled", updated_at=now, finished_at=now)
    )
    return int(result.rowcount)


def reschedule(conn: sa.Connection, *, key: str, due_at: datetime) -> bool:
    """Move the queued job with `key` to `due_at`; False when no such job is queued."""
    _require_aware(due_at, "due_at")
    result = conn.execute(
        job_queue.update()
        .where(job_queue.c.key == key, job_queue.c.status == "queued")
        .values(due_at=due_at, updated_at=utc_now())
    )
    return bool(result.rowcount)


__all__ = ["cancel", "enqueue", "reschedule"]

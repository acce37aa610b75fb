"""enqueue, cancel and reschedule in the caller's transaction, with keys deduplicated."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.jobs import cancel, enqueue, reschedule
from engine.storage.tables_jobs import job_queue

DUE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def _row(conn: sa.Connection, job_id: int) -> sa.RowMapping:
    return conn.execute(sa.select(job_queue).where(job_queue.c.id == job_id)).mappings().one()


def test_enqueue_inserts_a_queued_job(conn: sa.Connection) -> None:
    job_id = enqueue(conn, kind="test.echo", payload={"n": 1}, due_at=DUE)
    assert job_id is not None
    row = _row(conn, job_id)
    assert (row["status"], row["kind"], row["payload"], row["attempts"]) == (
        "queued",
        "test.echo",
        {"n": 1},
        0,
    )
    assert row["due_at"] == DUE and row["max_attempts"] == 10


def test_a_queued_key_is_not_inserted_twice(conn: sa.Connection) -> None:
    first = enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="k1")
    assert first is not None
    assert enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="k1") is None
    conn.execute(job_queue.update().where(job_queue.c.id == first).values(status="running"))
    assert enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="k1") is None
    # once the job is over, the key is free again
    conn.execute(job_queue.update().where(job_queue.c.id == first).values(status="done"))
    assert enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="k1") is not None


def test_jobs_without_key_are_never_deduplicated(conn: sa.Connection) -> None:
    ids = {enqueue(conn, kind="test.echo", payload={}, due_at=DUE) for _ in range(3)}
    assert len(ids) == 3 and None not in ids


def test_cancel_cancels_only_queued_jobs_with_the_key(conn: sa.Connection) -> None:
    queued = enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="c1")
    other = enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="c2")
    assert queued is not None and other is not None
    assert cancel(conn, key="c1") == 1
    assert cancel(conn, key="c1") == 0
    assert _row(conn, queued)["status"] == "cancelled"
    assert _row(conn, other)["status"] == "queued"


def test_reschedule_moves_a_queued_job(conn: sa.Connection) -> None:
    job_id = enqueue(conn, kind="test.echo", payload={}, due_at=DUE, key="r1")
    assert job_id is not None
    later = DUE + timedelta(hours=2)
    assert reschedule(conn, key="r1", due_at=later) is True
    assert _row(conn, job_id)["due_at"] == later
    assert reschedule(conn, key="missing", due_at=later) is False


def test_naive_due_times_and_zero_attempts_are_refused(conn: sa.Connection) -> None:
    with pytest.raises(ValueError):
        enqueue(conn, kind="test.echo", payload={}, due_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        enqueue(conn, kind="test.echo", payload={}, due_at=DUE, max_attempts=0)


def test_providers_are_collected_and_missing_or_broken_ones_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from engine.jobs.providers import collect_handlers

    caplog.set_level(logging.INFO, logger="engine.jobs.providers")
    handlers = collect_handlers(
        [
            "engine.outbox.handlers:job_handlers",
            "engine.not_written_yet:job_handlers",
            "tests.engine.jobs._handlers:broken_provider",
        ]
    )
    assert set(handlers) == {"outbox.email", "outbox.webhook"}
    assert "engine.not_written_yet is not installed" in caplog.text
    assert "broken_provider failed" in caplog.text
    with pytest.raises(RuntimeError, match="two handlers"):
        collect_handlers(["engine.outbox.handlers", "engine.outbox.handlers"])


def test_keyed_enqueues_keep_working_on_one_connection(conn: sa.Connection) -> None:
    """PostgreSQL switches to a generic plan after five executions; the ON CONFLICT target must
    still match the partial index then (it did not while its WHERE held bound values)."""
    due = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(20):
        assert enqueue(conn, kind="t", payload={}, due_at=due, key=f"k{n}") is not None
        assert enqueue(conn, kind="t", payload={}, due_at=due, key=f"k{n}") is None

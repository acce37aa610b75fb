"""The worker on a real database: effects commit with completion, failures retry then fail,
expired leases are re-claimed, and a job's effect happens once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from engine.jobs import enqueue
from engine.jobs.claims import claim_due
from engine.jobs.worker import NO_HANDLER, Worker, WorkerOptions, isolated
from engine.storage.sqltypes import utc_now
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork
from tests.engine.jobs._handlers import (
    CALLS,
    count_then_write,
    effect_rows,
    repeat_with_same_key,
    write_effect,
    write_then_fail,
    write_unless_told_to_fail,
)

QUICK = WorkerOptions(lease_seconds=30, batch_size=10, poll_seconds=0.05, retry_base_seconds=0)
PAST = datetime(2020, 1, 1, tzinfo=UTC)


def _enqueue(db: sa.Engine, count: int = 1, **kwargs: object) -> list[int]:
    ids = []
    with db.begin() as conn:
        for n in range(count):
            args: dict[str, object] = {"kind": "test.effect", "due_at": PAST}
            args |= {"payload": {"key": f"e{n:05d}"}} | kwargs
            ids.append(enqueue(conn, **args))  # type: ignore[arg-type]
    return [i for i in ids if i is not None]


def _job(db: sa.Engine, job_id: int) -> sa.RowMapping:
    with db.connect() as conn:
        return conn.execute(sa.select(job_queue).where(job_queue.c.id == job_id)).mappings().one()


def test_a_due_job_runs_once_and_commits_with_its_effect(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    [job_id] = _enqueue(migrated_engine)
    worker = Worker(migrated_engine, handlers={"test.effect": write_effect}, options=QUICK)
    assert worker.drain() == 1
    assert effect_rows(migrated_engine) == [("e00000", job_id)]
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"], job["locked_by"]) == ("done", 1, worker.name)
    assert job["finished_at"] is not None and job["lease_until"] is None
    assert worker.drain() == 0


def test_a_job_due_later_waits(migrated_engine: sa.Engine, effects: sa.Table) -> None:
    _enqueue(migrated_engine, due_at=utc_now() + timedelta(hours=1))
    assert Worker(migrated_engine, handlers={"test.effect": write_effect}).drain() == 0
    assert effect_rows(migrated_engine) == []


def test_a_raising_handler_is_rolled_back_retried_then_failed(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    [job_id] = _enqueue(migrated_engine, max_attempts=3)
    worker = Worker(migrated_engine, handlers={"test.effect": write_then_fail}, options=QUICK)
    worker.run_batch()
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"]) == ("queued", 1)
    assert "RuntimeError('boom')" in job["last_error"]
    assert worker.drain() == 2
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"]) == ("failed", 3)
    assert effect_rows(migrated_engine) == []  # nothing half-done


def test_a_failing_job_leaves_the_others_of_its_group_done(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    with migrated_engine.begin() as conn:
        ids = [
            enqueue(conn, kind="test.effect", payload={"key": key, "fail": key == "b"}, due_at=PAST)
            for key in ("a", "b", "c")
        ]
    handlers = {"test.effect": write_unless_told_to_fail}
    options = WorkerOptions(batch_size=10, group_seconds=60, retry_base_seconds=600)
    assert Worker(migrated_engine, handlers=handlers, options=options).run_batch() == 3
    assert effect_rows(migrated_engine) == [("a", ids[0]), ("c", ids[2])]
    assert [_job(migrated_engine, i)["status"] for i in ids] == ["done", "queued", "done"]


def test_a_failure_reruns_grouped_handlers_but_never_isolated_ones(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    jobs = [("test.plain", "a", False), ("test.plain", "b", True), ("test.alone", "c", False)]
    jobs += [("test.plain", "d", True)]
    with migrated_engine.begin() as conn:
        for kind, key, fail in jobs:
            enqueue(conn, kind=kind, payload={"key": key, "fail": fail}, due_at=PAST)
    handlers = {"test.plain": count_then_write, "test.alone": isolated(count_then_write)}
    options = WorkerOptions(batch_size=10, group_seconds=60, retry_base_seconds=600)
    CALLS.clear()
    Worker(migrated_engine, handlers=handlers, options=options).run_batch()
    # a and b ran as a group; b failed, so both ran again in savepoints; c ran alone; d failed
    # alone in its group and ran again
    assert CALLS == ["a", "b", "a", "b", "c", "d", "d"]
    assert [key for key, _ in effect_rows(migrated_engine)] == ["a", "c"]


def test_retries_back_off_exponentially() -> None:
    options = WorkerOptions(retry_base_seconds=10, retry_max_seconds=100)
    first, third, tenth = (options.retry_delay(n).total_seconds() for n in (1, 3, 10))
    assert 8 <= first <= 12 and 32 <= third <= 48 and 80 <= tenth <= 120


def test_a_job_without_handler_fails_visibly_at_once(migrated_engine: sa.Engine) -> None:
    [job_id] = _enqueue(migrated_engine, kind="test.nobody")
    Worker(migrated_engine, handlers={}, options=QUICK).drain()
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert job["last_error"].startswith(NO_HANDLER)


def test_an_expired_lease_is_reclaimed_and_the_effect_happens_once(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    [job_id] = _enqueue(migrated_engine)
    now = utc_now()
    with migrated_engine.begin() as conn:  # a worker claims it, then dies
        claim_due(conn, worker="dead", now=now, lease_until=now + timedelta(seconds=30), limit=5)
    handlers = {"test.effect": write_effect}
    assert Worker(migrated_engine, handlers=handlers, options=QUICK).drain() == 0
    later = Worker(
        migrated_engine,
        handlers=handlers,
        options=QUICK,
        clock=lambda: now + 2 * (timedelta(seconds=30)),
    )
    assert later.drain() == 1
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
    assert "lease expired" in job["last_error"]
    assert effect_rows(migrated_engine) == [("e00000", job_id)]


def test_a_worker_that_lost_its_lease_does_not_run_the_job(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    [job_id] = _enqueue(migrated_engine)
    now = utc_now()
    with migrated_engine.begin() as conn:
        [stale] = claim_due(conn, worker="slow", now=now, lease_until=now, limit=1)
    handlers = {"test.effect": write_effect}
    late = now + timedelta(seconds=1)
    Worker(migrated_engine, handlers=handlers, options=QUICK, clock=lambda: late).drain()
    Worker(migrated_engine, handlers=handlers, name="slow", options=QUICK).run_job(stale)
    assert effect_rows(migrated_engine) == [("e00000", job_id)]


def test_a_handler_can_queue_the_next_run_under_its_own_key(
    migrated_engine: sa.Engine, effects: sa.Table
) -> None:
    _enqueue(migrated_engine, kind="test.repeat", key="repeat", payload={"key": "r", "left": 2})
    worker = Worker(migrated_engine, handlers={"test.repeat": repeat_with_same_key}, options=QUICK)
    worker.drain()
    assert [key for key, _ in effect_rows(migrated_engine)] == ["r", "r+", "r++"]


def test_concurrent_workers_never_run_a_job_twice(
    migrated_engine: sa.Engine, effects: sa.Table, uow_factory: Callable[[], UnitOfWork]
) -> None:
    from engine.jobs.runner import drain_all, make_workers

    ids = _enqueue(migrated_engine, 300)
    options = WorkerOptions(batch_size=7)
    workers = make_workers(
        migrated_engine, handlers={"test.effect": write_effect}, concurrency=4, options=options
    )
    assert drain_all(workers) == 300
    rows = effect_rows(migrated_engine)
    assert sorted(job for _, job in rows) == sorted(ids)  # each once, none twice
    with migrated_engine.connect() as conn:
        statuses = conn.execute(sa.select(job_queue.c.status, job_queue.c.attempts)).all()
    assert set(statuses) == {("done", 1)}

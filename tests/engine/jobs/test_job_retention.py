"""The retention job on a real database: run by the real worker, it purges finished jobs,
successful deliveries and read notifications past their age, keeps everything else, works in
batches and queues its own next run; `tangram worker` queues it at start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.jobs import retention
from engine.jobs.providers import collect_handlers
from engine.jobs.retention import Retention, retention_handler
from engine.jobs.runner import run_worker
from engine.jobs.worker import Worker
from engine.settings import Settings
from engine.storage.tables_jobs import job_queue, outbox_deliveries, outbox_notifications
from engine.storage.uow import UnitOfWork

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=40), NOW - timedelta(days=5)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)  # the queued test job never runs
AGES = Retention(
    jobs=timedelta(days=30),
    deliveries=timedelta(days=30),
    notifications=timedelta(days=30),
    every=timedelta(hours=1),
)


def _job(conn: sa.Connection, name: str, status: str, finished_at: datetime | None) -> None:
    conn.execute(
        job_queue.insert().values(
            kind="test.kept", payload={"name": name}, status=status, due_at=FUTURE, attempts=1,
            max_attempts=3, created_at=OLD, updated_at=OLD, finished_at=finished_at,
        )
    )  # fmt: skip


def _delivery(conn: sa.Connection, name: str, ok: bool, at: datetime) -> None:
    conn.execute(
        outbox_deliveries.insert().values(
            delivery_id=name, endpoint="http://127.0.0.1:9/hook", attempt=1, ok=ok,
            status_code=200 if ok else 500, duration_ms=1, at=at,
        )
    )  # fmt: skip


def _notification(conn: sa.Connection, user: int, name: str, read_at: datetime | None) -> None:
    conn.execute(
        outbox_notifications.insert().values(
            user_id=user, subject=name, body="", key=name, created_at=OLD, read_at=read_at
        )
    )


@pytest.fixture
def seeded(migrated_engine: sa.Engine, make_user: Callable[..., Any]) -> sa.Engine:
    user = make_user("reader").id
    with migrated_engine.begin() as conn:
        _job(conn, "old-done", "done", OLD)
        _job(conn, "old-cancelled", "cancelled", OLD)
        _job(conn, "recent-done", "done", RECENT)
        _job(conn, "old-failed", "failed", OLD)
        _job(conn, "queued", "queued", None)
        _delivery(conn, "old-ok", True, OLD)
        _delivery(conn, "recent-ok", True, RECENT)
        _delivery(conn, "old-failed", False, OLD)
        _notification(conn, user, "old-read", OLD)
        _notification(conn, user, "recent-read", RECENT)
        _notification(conn, user, "old-unread", None)
    return migrated_engine


def _left(db: sa.Engine) -> dict[str, set[str]]:
    with db.connect() as conn:
        jobs = conn.execute(
            sa.select(job_queue.c.payload).where(job_queue.c.kind == "test.kept")
        ).scalars()
        deliveries = conn.execute(sa.select(outbox_deliveries.c.delivery_id)).scalars()
        notes = conn.execute(sa.select(outbox_notifications.c.subject)).scalars()
        return {
            "jobs": {p["name"] for p in jobs},
            "deliveries": set(deliveries),
            "notifications": set(notes),
        }


def _next_run(db: sa.Engine) -> list[tuple[str, datetime]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(job_queue.c.status, job_queue.c.due_at).where(
                job_queue.c.kind == retention.KIND, job_queue.c.status == "queued"
            )
        ).all()
    return [(str(status), due) for status, due in rows]


def _worker(db: sa.Engine) -> Worker:
    return Worker(db, handlers={retention.KIND: retention_handler(AGES)}, clock=lambda: NOW)


def test_the_job_purges_what_is_past_its_age_and_keeps_the_rest(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        retention.schedule(conn, due_at=NOW)
    assert _worker(seeded).drain() == 1
    assert _left(seeded) == {
        "jobs": {"recent-done", "old-failed", "queued"},
        "deliveries": {"recent-ok", "old-failed"},
        "notifications": {"recent-read", "old-unread"},
    }
    assert _next_run(seeded) == [("queued", NOW + timedelta(hours=1))]


def test_a_large_backlog_is_purged_in_batches(
    seeded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with seeded.begin() as conn:
        for n in range(5):
            _job(conn, f"more-{n}", "done", OLD)
        retention.schedule(conn, due_at=NOW)
    monkeypatch.setattr(retention, "BATCH", 2)
    assert _worker(seeded).drain() == 4  # 7 old jobs, 2 a run: the last run finds 1
    assert _left(seeded)["jobs"] == {"recent-done", "old-failed", "queued"}
    assert _next_run(seeded) == [("queued", NOW + timedelta(hours=1))]


def test_scheduling_twice_queues_one_job(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        assert retention.schedule(conn, due_at=NOW) is not None
        assert retention.schedule(conn, due_at=NOW) is None
    assert len(_next_run(seeded)) == 1


def test_the_worker_command_queues_and_runs_it_with_the_settings(
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert retention.KIND in collect_handlers(["engine.jobs.retention:job_handlers"])
    with migrated_engine.begin() as conn:
        _job(conn, "old-done", "done", datetime.now(UTC) - timedelta(days=3))
        _job(conn, "new-done", "done", datetime.now(UTC) - timedelta(days=1))
    monkeypatch.setenv("TANGRAM_JOB_RETENTION_DAYS", "2")  # the provider reads the environment
    monkeypatch.setenv("TANGRAM_RETENTION_INTERVAL_SECONDS", "600")
    assert run_worker(Settings(), db=migrated_engine, once=True) >= 1
    assert _left(migrated_engine)["jobs"] == {"new-done"}
    [(_status, due)] = _next_run(migrated_engine)
    assert timedelta(seconds=590) < due - datetime.now(UTC) <= timedelta(seconds=600)

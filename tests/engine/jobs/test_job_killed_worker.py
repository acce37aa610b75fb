"""A worker process killed with SIGKILL mid-job: the job is re-claimed after its lease and its
effect happens exactly once (PostgreSQL: the killed connection's transaction is rolled back)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.jobs import enqueue
from engine.jobs.worker import Worker, WorkerOptions
from engine.storage.sqltypes import utc_now
from engine.storage.tables_jobs import job_queue
from tests.engine.jobs._handlers import effect_rows, write_effect

LEASE_SECONDS = 2.0


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"the worker did not reach the handler: {output}")
        time.sleep(0.05)


def test_a_killed_workers_job_is_rerun_once(
    backend: str, migrated_engine: sa.Engine, effects: sa.Table, root: Path, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("one worker on SQLite; the multi-process lease needs PostgreSQL")
    with migrated_engine.begin() as conn:
        job_id = enqueue(
            conn, kind="test.effect", payload={"key": "once"}, due_at=utc_now(), key="kill-me"
        )
    marker = tmp_path / "in-handler"
    url = migrated_engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.jobs._kill_worker", url, str(LEASE_SECONDS)],
        cwd=root,
        env={**os.environ, "JOBTEST_MARKER": str(marker)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(marker, process)  # the effect row is written, not committed
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    worker = Worker(
        migrated_engine,
        handlers={"test.effect": write_effect},
        options=WorkerOptions(lease_seconds=LEASE_SECONDS),
    )
    assert worker.drain() == 0  # still leased to the dead worker
    assert effect_rows(migrated_engine) == []
    time.sleep(LEASE_SECONDS + 0.2)
    assert worker.drain() == 1
    assert effect_rows(migrated_engine) == [("once", job_id)]
    with migrated_engine.connect() as conn:
        job = conn.execute(sa.select(job_queue).where(job_queue.c.id == job_id)).mappings().one()
    assert (job["status"], job["attempts"], job["locked_by"]) == ("done", 2, worker.name)
    assert job["finished_at"] - job["created_at"] < timedelta(seconds=30)

"""`tangram worker` (once, and as a process stopped by SIGTERM) and the in-process worker of
`tangram serve`, each delivering a queued webhook to a local receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import cli
from engine.jobs import retention
from engine.jobs.runner import background_worker
from engine.outbox import send_webhook
from engine.settings import Settings
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork
from tests.engine.outbox.receivers import HookLog, webhook_receiver


def _queue_hook(db: sa.Engine, url: str) -> None:
    with db.begin() as conn:
        send_webhook(conn, url=url, payload={"n": 1})


def _statuses(db: sa.Engine) -> list[str]:
    """The statuses of the jobs the test queued (not the retention job every worker queues)."""
    query = sa.select(job_queue.c.status).where(job_queue.c.kind != retention.KIND)
    with db.connect() as conn:
        return list(conn.execute(query).scalars())


def _wait_until(condition: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_once_runs_what_is_due(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> None:
    url = migrated_engine.url.render_as_string(hide_password=False)
    with webhook_receiver() as (base, received):
        _queue_hook(migrated_engine, f"{base}/once")
        options = ["--database-url", url, "--data-dir", str(tmp_path)]
        result = CliRunner().invoke(cli, [*options, "worker", "--once", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "ran 2 job(s)" in result.output  # the webhook and the first retention run
    assert len(received.requests) == 1 and _statuses(migrated_engine) == ["done"]


def test_worker_process_runs_jobs_until_sigterm(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], root: Path, tmp_path: Path
) -> None:
    url = migrated_engine.url.render_as_string(hide_password=False)
    command = "from api.cli import main; main()"
    env = {**os.environ, "TANGRAM_WORKER_POLL_SECONDS": "0.1"}
    with webhook_receiver() as (base, received):
        process = subprocess.Popen(
            [sys.executable, "-c", command, "--database-url", url, "--data-dir", str(tmp_path)]
            + ["worker"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            _queue_hook(migrated_engine, f"{base}/live")
            _wait_until(lambda: _statuses(migrated_engine) == ["done"])
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert len(received.requests) == 1


def test_serve_runs_an_in_process_worker_on_sqlite_only(
    backend: str, migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    url = migrated_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, worker_poll_seconds=0.05)
    received: HookLog
    with webhook_receiver() as (base, received):
        with background_worker(settings):
            _queue_hook(migrated_engine, f"{base}/serve")
            if backend == "sqlite":
                _wait_until(lambda: _statuses(migrated_engine) == ["done"])
            else:
                time.sleep(0.5)
                assert _statuses(migrated_engine) == ["queued"]  # left to `tangram worker`
        with background_worker(settings, enabled=False):
            _queue_hook(migrated_engine, f"{base}/off")
            time.sleep(0.3)
    assert [path for _, path, _, _ in received.requests] == (
        ["/serve"] if backend == "sqlite" else []
    )

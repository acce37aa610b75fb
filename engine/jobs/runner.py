"""Running workers: N threads in this process, until stopped or (with `once`) until idle.

`tangram worker` and the in-process worker of `tangram serve` both start here. SQLite has a
single writer, so there it always runs one thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType

import sqlalchemy as sa

from engine.jobs import retention
from engine.jobs.providers import collect_handlers
from engine.jobs.types import JobHandler
from engine.jobs.worker import Worker, WorkerOptions, default_worker_name
from engine.settings import Settings
from engine.storage.database import create_database_engine, is_postgresql
from engine.storage.sqltypes import utc_now

log = logging.getLogger(__name__)


def make_workers(
    db: sa.Engine,
    *,
    handlers: Mapping[str, JobHandler],
    concurrency: int,
    options: WorkerOptions,
) -> list[Worker]:
    """`concurrency` workers on `db` (one on SQLite), each with its own name and connection."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not is_postgresql(db) and concurrency > 1:
        log.info("SQLite has one writer: running 1 worker instead of %d", concurrency)
        concurrency = 1
    return [
        Worker(db, handlers=handlers, name=default_worker_name(i), options=options)
        for i in range(concurrency)
    ]


def start_threads(workers: list[Worker], stop: threading.Event) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"tangram-{w.name}", daemon=True)
        for w in workers
    ]
    for thread in threads:
        thread.start()
    return threads


def drain_all(workers: list[Worker]) -> int:
    """Run every worker until nothing is due; returns how many jobs were claimed."""
    counts = [0] * len(workers)

    def drain(index: int) -> None:
        counts[index] = workers[index].drain()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def _wire(db: sa.Engine) -> None:
    """Build the engines so the worker's writes fire the listeners the API's writes fire, and
    make sure the retention job is queued (a no-op while it is)."""
    from engine.wiring import build_engines  # the engines import the job queue back

    build_engines(db)
    with db.begin() as conn:
        retention.schedule(conn, due_at=utc_now())


def run_worker(
    settings: Settings, *, db: sa.Engine, concurrency: int = 1, once: bool = False
) -> int:
    """The `tangram worker` loop: returns after SIGINT/SIGTERM, or when idle with `once`."""
    _wire(db)
    workers = make_workers(
        db,
        handlers=collect_handlers(),
        concurrency=concurrency,
        options=WorkerOptions.from_settings(settings),
    )
    if once:
        return drain_all(workers)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current jobs", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threads = start_threads(workers, stop)
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    return 0


@contextmanager
def background_worker(settings: Settings, *, enabled: bool | None = None) -> Iterator[None]:
    """One worker thread on its own engine for the life of the block (`tangram serve`).

    `enabled=None` runs it on SQLite only: with PostgreSQL, `tangram worker` processes run jobs.
    """
    db = create_database_engine(settings.resolved_database_url())
    if enabled is None:
        enabled = not is_postgresql(db)
    if not enabled:
        db.dispose()
        yield
        return
    _wire(db)
    stop = threading.Event()
    workers = make_workers(
        db,
        handlers=collect_handlers(),
        concurrency=1,
        options=WorkerOptions.from_settings(settings),
    )
    threads = start_threads(workers, stop)
    log.info("in-process worker started")
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        db.dispose()


__all__ = ["background_worker", "drain_all", "make_workers", "run_worker", "start_threads"]

"""Due timers fired by worker processes: rate, duplicates and lag from due time to firing.

Each timer is a `job_queue` row whose handler writes one effect row (job id, fired at) in the
unit of work that marks the job done. Two phases:

1. backlog: all timers due at the start; the rate is the workers' throughput.
2. paced: timers due evenly over `timers / pace` seconds; the lag p95 is how late they fire.

Duplicates are effect rows beyond one per job (the effect table has no unique key, so a job run
twice would show). The baseline is the same number of threads doing only the bare work of a job
(insert one row, commit), the physical limit of this machine's commit rate.

Usage: .venv/bin/python bench/flows_timers.py --db URL [--timers 100000] [--workers 2]
       [--concurrency 4] [--pace 1000] [--phase backlog|paced|both]
With PostgreSQL it works in a schema `bench_timers` of that database (dropped and recreated);
without --db, a SQLite file (one worker: SQLite has one writer).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.jobs.runner import make_workers, start_threads  # noqa: E402
from engine.jobs.types import JobContext  # noqa: E402
from engine.jobs.worker import WorkerOptions  # noqa: E402
from engine.storage.database import create_database_engine, is_postgresql  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402
from engine.storage.sqltypes import UtcDateTime, utc_now  # noqa: E402
from engine.storage.tables_jobs import job_queue  # noqa: E402

SCHEMA = "bench_timers"
KIND = "bench.timer"
EFFECTS = sa.Table(
    "bench_timer_effects",
    sa.MetaData(),
    sa.Column("job_id", sa.BigInteger, nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
    sa.Column("fired_at", UtcDateTime(), nullable=False),
)


def connect(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return create_database_engine(url)
    return create_database_engine(url, connect_args={"options": f"-csearch_path={SCHEMA}"})


INSERT_EFFECT = EFFECTS.insert()


def fire(ctx: JobContext) -> None:
    row = {"job_id": ctx.job_id, "worker": ctx.worker, "fired_at": utc_now()}
    ctx.uow.conn.execute(INSERT_EFFECT, row)


def worker_process(url: str, concurrency: int) -> None:
    """A worker process: `concurrency` threads firing timers until SIGTERM."""
    db = connect(url)
    options = WorkerOptions(lease_seconds=60, batch_size=100, poll_seconds=0.05)
    workers = make_workers(db, handlers={KIND: fire}, concurrency=concurrency, options=options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for thread in start_threads(workers, stop):
        thread.join()
    print(f"cpu {time.process_time():.3f}", flush=True)  # read by run_phase


def prepare(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        admin = create_database_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        admin.dispose()
    db = connect(url)
    upgrade_database(db)
    EFFECTS.create(db)
    return db


FAR = datetime(2100, 1, 1, tzinfo=UTC)


def load_timers(db: sa.Engine, count: int) -> None:
    """Queue `count` timers, not due yet (`schedule` sets their due times)."""
    now = utc_now()
    for offset in range(0, count, 10_000):
        rows = [
            {
                "kind": KIND,
                "payload": {"n": n},
                "key": None,
                "status": "queued",
                "due_at": FAR,
                "attempts": 0,
                "max_attempts": 10,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(offset, min(count, offset + 10_000))
        ]
        with db.begin() as conn:
            conn.execute(job_queue.insert(), rows)


def schedule(db: sa.Engine, start: datetime, spread: float, count: int) -> None:
    """Make the timers due from `start`, evenly over `spread` seconds, in id order."""
    step = spread / count
    with db.begin() as conn:
        ids = list(conn.execute(sa.select(job_queue.c.id).order_by(job_queue.c.id)).scalars())
        if is_postgresql(db):
            conn.execute(
                sa.text(
                    "UPDATE job_queue SET due_at = :start + (id - :first) * make_interval("
                    "secs => :step)"
                ),
                {"start": start, "first": ids[0], "step": step},
            )
            return
        update = job_queue.update().where(job_queue.c.id == sa.bindparam("job"))
        params = [
            {"job": i, "due_at": start + timedelta(seconds=n * step)} for n, i in enumerate(ids)
        ]
        conn.execute(update.values(due_at=sa.bindparam("due_at")), params)


def reset(db: sa.Engine) -> None:
    with db.begin() as conn:
        conn.execute(EFFECTS.delete())
        conn.execute(job_queue.delete())


def run_phase(db: sa.Engine, args: argparse.Namespace, url: str, spread: float) -> dict[str, float]:
    reset(db)
    load_timers(db, args.timers)
    workers = 1 if not is_postgresql(db) else args.workers
    command = [sys.executable, __file__, "--worker-process", url, str(args.concurrency)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(workers)]
    try:
        time.sleep(args.startup)  # the processes import and start polling the (idle) queue
        schedule(db, utc_now() + timedelta(seconds=1), spread, args.timers)
        while _remaining(db):
            time.sleep(0.5)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    cpu = 0.0
    for process in processes:
        out = process.stdout.read().decode() if process.stdout else ""
        cpu += sum(float(line.split()[1]) for line in out.splitlines() if line.startswith("cpu "))
    return {**measure(db), "cpu_ms": 1000 * cpu / args.timers}


def _remaining(db: sa.Engine) -> bool:
    """Whether any timer is still queued or running (cheap: the partial indexes answer it)."""
    with db.connect() as conn:
        for status in ("queued", "running"):
            query = sa.select(job_queue.c.id).where(job_queue.c.status == status).limit(1)
            if conn.execute(query).first() is not None:
                return True
    return False


def measure(db: sa.Engine) -> dict[str, float]:
    with db.connect() as conn:
        effects = conn.execute(sa.select(sa.func.count()).select_from(EFFECTS)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count(sa.distinct(EFFECTS.c.job_id)))
        ).scalar_one()
        rows = conn.execute(
            sa.select(EFFECTS.c.fired_at, job_queue.c.due_at).join(
                job_queue, job_queue.c.id == EFFECTS.c.job_id
            )
        ).all()
        failed = conn.execute(
            sa.select(sa.func.count()).where(job_queue.c.status != "done")
        ).scalar_one()
    fired = sorted(r.fired_at for r in rows)
    lags = sorted((r.fired_at - r.due_at).total_seconds() for r in rows)
    span = (fired[-1] - fired[0]).total_seconds() or 1e-9
    return {
        "fired": float(distinct),
        "duplicates": float(effects - distinct),
        "not_done": float(failed),
        "rate": distinct / span,
        "lag_p50_ms": 1000 * lags[len(lags) // 2],
        "lag_p95_ms": 1000 * lags[int(len(lags) * 0.95)],
        "lag_max_ms": 1000 * lags[-1],
    }


def baseline(db: sa.Engine, threads: int, per_thread: int) -> float:
    """Commits/s of `threads` threads each inserting one effect row per transaction."""
    reset(db)

    def work(index: int) -> None:
        with db.connect() as conn:
            for _ in range(per_thread):
                with conn.begin():
                    row = {"job_id": index, "worker": "bare", "fired_at": utc_now()}
                    conn.execute(INSERT_EFFECT, row)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return threads * per_thread / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per process")
    parser.add_argument("--pace", type=float, default=1000.0, help="paced phase: timers due/s")
    parser.add_argument("--startup", type=float, default=8.0, help="s for processes to start")
    parser.add_argument("--phase", choices=("backlog", "paced", "both"), default="both")
    parser.add_argument("--worker-process", nargs=2, metavar=("URL", "THREADS"))
    args = parser.parse_args()
    if args.worker_process:
        worker_process(args.worker_process[0], int(args.worker_process[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'timers.db'}"
        db = prepare(url)
        backend = db.dialect.name
        workers = args.workers if is_postgresql(db) else 1
        threads = args.concurrency if is_postgresql(db) else 1
        print(
            f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}"
        )
        print(
            f"# {backend}: {args.timers} timers, {workers} worker process(es) x {threads} thread(s)"
        )
        bare = baseline(db, workers * threads, 2000)
        print(f"baseline: bare insert+commit, {workers * threads} threads: {bare:,.0f}/s")
        phases = {"backlog": 0.0, "paced": args.timers / args.pace}
        for name, spread in phases.items():
            if args.phase not in (name, "both"):
                continue
            r = run_phase(db, args, url, spread)
            print(
                f"{name}: fired {r['fired']:,.0f}, duplicates {r['duplicates']:.0f}, "
                f"not done {r['not_done']:.0f}, rate {r['rate']:,.0f}/s "
                f"({r['rate'] / bare:.2f} of bare), lag p50 {r['lag_p50_ms']:,.0f} ms, "
                f"p95 {r['lag_p95_ms']:,.0f} ms, max {r['lag_max_ms']:,.0f} ms; "
                f"worker CPU {r['cpu_ms']:.2f} ms/timer (imports and idle polls included)"
            )
        if not url.startswith("sqlite"):
            db.dispose()
            admin = create_database_engine(url)
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {SCHEMA} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()

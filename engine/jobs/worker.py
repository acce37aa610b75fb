"""The worker: claims due jobs under a lease and runs them in units of work.

A handler's database effects and the job's completion commit together; jobs run back to back
share a transaction, each in a savepoint of its own (handlers never commit). A handler that
raises has its effects rolled back; the job is retried with exponential backoff and jitter until
it runs out of attempts, then it is `failed` (visible to admins, retryable). A job whose kind has
no handler fails at once. A worker that dies leaves its jobs `running` until the lease expires;
any worker then requeues them (engine/jobs/claims.py).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.errors import EngineError
from engine.jobs import claims
from engine.jobs.claims import ClaimedJob
from engine.jobs.errors import JobFailure
from engine.jobs.types import JobContext, JobHandler
from engine.settings import Settings
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

log = logging.getLogger(__name__)

NO_HANDLER = "job.no-handler"
# Jobs are marked started a chunk per statement, the chunk sized to what fits in the group's time
# left at the worker's recent speed; the group's time is checked between chunks.
_MAX_START_CHUNK = 200


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    lease_seconds: float = 60.0
    batch_size: int = 50
    poll_seconds: float = 1.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    # Jobs run back to back share one transaction (each in a savepoint) for up to this long:
    # one commit, so one disk flush, per group instead of per job.
    group_seconds: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        return cls(
            lease_seconds=settings.worker_lease_seconds,
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            retry_base_seconds=settings.job_retry_base_seconds,
            retry_max_seconds=settings.job_retry_max_seconds,
        )

    def retry_delay(self, attempt: int) -> timedelta:
        """Exponential backoff from the first attempt, capped, with ±20 % jitter."""
        delay = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (attempt - 1))
        return timedelta(seconds=delay * random.uniform(0.8, 1.2))


def default_worker_name(index: int = 0) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"[:100]


class _Isolated:
    """A handler that runs in a transaction of its own (see `isolated`)."""

    __slots__ = ("handler",)

    def __init__(self, handler: JobHandler) -> None:
        self.handler = handler

    def __call__(self, ctx: JobContext) -> None:
        self.handler(ctx)


def isolated(handler: JobHandler) -> JobHandler:
    """Mark a handler with effects outside the database (e-mail, HTTP): its jobs run one per
    transaction, never grouped, so another job's failure never makes it run again."""
    return _Isolated(handler)


class _HandlerFailed(Exception):
    def __init__(self, job: ClaimedJob) -> None:
        super().__init__(job.id)
        self.job = job


class Worker:
    """One claiming loop. Threads or processes each run their own `Worker`."""

    def __init__(
        self,
        db: sa.Engine,
        *,
        handlers: Mapping[str, JobHandler],
        name: str | None = None,
        options: WorkerOptions | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.name = name or default_worker_name()
        self.options = options or WorkerOptions()
        self._clock = clock
        self._last_reap = float("-inf")
        self._job_seconds = self.options.group_seconds / 10  # recent run time per job, smoothed

    def run_batch(self, stop: threading.Event | None = None) -> int:
        """Reap expired leases now and then, claim one batch and run it; returns jobs claimed.

        When `stop` is set midway, the jobs not started yet are released at once.
        """
        if time.monotonic() - self._last_reap >= self.options.lease_seconds / 4:
            with self.db.begin() as conn:
                reaped = claims.reap_expired(conn, now=self._clock())
            if reaped:
                log.warning("worker %s: requeued %d job(s) of stopped workers", self.name, reaped)
            self._last_reap = time.monotonic()
        now = self._clock()
        with self.db.begin() as conn:
            batch = claims.claim_due(
                conn,
                worker=self.name,
                now=now,
                lease_until=now + timedelta(seconds=self.options.lease_seconds),
                limit=self.options.batch_size,
            )
        self._run_claimed(batch, stop)
        return len(batch)

    def drain(self, *, max_batches: int | None = None) -> int:
        """Run batches until nothing is due (or `max_batches` ran); returns jobs claimed."""
        total = batches = 0
        while max_batches is None or batches < max_batches:
            claimed = self.run_batch()
            total += claimed
            batches += 1
            if claimed == 0:
                break
        return total

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a database outage is logged and waited out."""
        log.info("worker %s started (%d handler kinds)", self.name, len(self.handlers))
        while not stop.is_set():
            try:
                claimed = self.run_batch(stop)
            except Exception:
                log.exception("worker %s: polling the job queue failed", self.name)
                claimed = 0
            if claimed == 0:
                stop.wait(self.options.poll_seconds)
        log.info("worker %s stopped", self.name)

    def _run_claimed(self, batch: list[ClaimedJob], stop: threading.Event | None) -> None:
        pending = batch
        renewed_at = time.monotonic()
        while pending:
            if stop is not None and stop.is_set():
                with self.db.begin() as conn:
                    rest = [j.id for j in pending]
                    claims.release(conn, job_ids=rest, worker=self.name, now=self._clock())
                return
            if time.monotonic() - renewed_at >= self.options.lease_seconds / 3:
                self._renew([j.id for j in pending])
                renewed_at = time.monotonic()
            if self._runs_alone(pending[0]):
                pending = self._run_group(pending[:1], careful=True) + pending[1:]
                continue
            size = next((i for i, j in enumerate(pending) if self._runs_alone(j)), len(pending))
            pending = self._run_group(pending[:size], careful=False) + pending[size:]

    def _runs_alone(self, job: ClaimedJob) -> bool:
        handler = self.handlers.get(job.kind)
        return handler is None or isinstance(handler, _Isolated)

    def _renew(self, job_ids: list[int]) -> None:
        lease_until = self._clock() + timedelta(seconds=self.options.lease_seconds)
        with self.db.begin() as conn:
            claims.renew(conn, job_ids=job_ids, worker=self.name, lease_until=lease_until)

    def run_job(self, job: ClaimedJob) -> None:
        """Run one claimed job in a transaction of its own."""
        self._run_group([job], careful=True)

    def _run_group(self, jobs: list[ClaimedJob], *, careful: bool) -> list[ClaimedJob]:
        """Run jobs in one transaction until `group_seconds` are used up, commit once (one disk
        flush for the group); returns the jobs not run yet.

        Careful groups run each job in a savepoint, so a failing job is rescheduled and the
        others still commit. Other groups save the two savepoint round trips per job: when a
        handler raises, the whole group is rolled back and the jobs up to the failing one run
        again carefully (handlers run at least once; their database effects commit once).
        """
        started = time.monotonic()
        ran: list[ClaimedJob] = []
        rest: list[ClaimedJob] = []
        try:
            with UnitOfWork(self.db, clock=self._clock) as uow:
                while len(ran) < len(jobs):
                    left = self.options.group_seconds - (time.monotonic() - started)
                    if ran and left <= 0:
                        rest = jobs[len(ran) :]
                        break
                    chunk = jobs[len(ran) : len(ran) + self._chunk_size(left)]
                    ran.extend(chunk)
                    chunk_started = time.monotonic()
                    self._run_chunk(uow, chunk, careful)
                    self._observe(time.monotonic() - chunk_started, len(chunk))
                uow.commit()
        except _HandlerFailed as failed:
            upto = jobs.index(failed.job) + 1
            return self._run_group(jobs[:upto], careful=True) + jobs[upto:]
        except Exception as err:  # the transaction itself failed: nothing of the group happened
            log.exception("worker %s: a group of %d job(s) failed to commit", self.name, len(ran))
            for job in ran:
                with self.db.begin() as conn:
                    self._record_failure(conn, job, err)
        return rest

    def _chunk_size(self, seconds_left: float) -> int:
        return max(1, min(_MAX_START_CHUNK, int(seconds_left / self._job_seconds)))

    def _observe(self, seconds: float, jobs: int) -> None:
        self._job_seconds = max(1e-5, (self._job_seconds + seconds / jobs) / 2)

    def _run_chunk(self, uow: UnitOfWork, chunk: list[ClaimedJob], careful: bool) -> None:
        now = self._clock()
        ids = [job.id for job in chunk]
        mine = claims.start(uow.conn, job_ids=ids, worker=self.name, now=now)
        for job in chunk:
            if job.id not in mine:
                log.warning("worker %s: lost the lease of job %d", self.name, job.id)
            elif careful:
                self._run_in_savepoint(uow, job, now)
            else:
                try:
                    self._call_handler(uow, job, now)
                except Exception as err:
                    raise _HandlerFailed(job) from err

    def _call_handler(self, uow: UnitOfWork, job: ClaimedJob, now: datetime) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            raise JobFailure(f"{NO_HANDLER}: no handler for kind {job.kind!r}", permanent=True)
        context = JobContext(
            uow=uow,
            job_id=job.id,
            kind=job.kind,
            payload=job.payload,
            attempt=job.attempts,
            now=now,
            worker=self.name,
        )
        handler(context)

    def _run_in_savepoint(self, uow: UnitOfWork, job: ClaimedJob, now: datetime) -> None:
        savepoint = uow.conn.begin_nested()
        try:
            self._call_handler(uow, job, now)
            savepoint.commit()
        except Exception as err:
            if savepoint.is_active:
                savepoint.rollback()
            self._record_failure(uow.conn, job, err)

    def _record_failure(self, conn: sa.Connection, job: ClaimedJob, err: Exception) -> None:
        permanent = isinstance(err, JobFailure) and err.permanent
        out_of_attempts = permanent or job.attempts >= job.max_attempts
        now = self._clock()
        retry_at = None if out_of_attempts else now + self.options.retry_delay(job.attempts)
        if isinstance(err, JobFailure) and err.record is not None:
            err.record(conn)
        claims.schedule_retry(
            conn,
            job_id=job.id,
            worker=self.name,
            now=now,
            error=describe_error(err),
            retry_at=retry_at,
        )
        outcome = "failed for good" if retry_at is None else f"retry at {retry_at:%H:%M:%S}"
        log.warning(
            "job %d (%s) attempt %d/%d: %s; %s",
            *(job.id, job.kind, job.attempts, job.max_attempts, err, outcome),
        )


def describe_error(err: Exception) -> str:
    """What admins see as the job's last error: the code or type, message and where it came from."""
    if isinstance(err, JobFailure):
        return str(err)[:4000]
    head = f"{err.code}: {err.message}" if isinstance(err, EngineError) else repr(err)
    trace = "".join(traceback.format_exception(err)[-3:])
    return f"{head}\n{trace}"[:4000]


__all__ = [
    "NO_HANDLER",
    "Worker",
    "WorkerOptions",
    "default_worker_name",
    "describe_error",
    "isolated",
]

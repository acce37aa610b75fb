"""`ImportJobStore`: the `import_jobs` rows that record imports report their progress in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.storage.sqltypes import utc_now
from engine.storage.tables import import_jobs

JOB_NOT_FOUND = "transfer.job-not-found"


@dataclass(frozen=True, slots=True)
class ImportJobRecord:
    """One stored import job."""

    id: int
    app: str
    form: str
    status: str
    mode: str
    file_name: str
    options: Mapping[str, Any]
    rows_read: int
    rows_written: int
    rows_failed: int
    problems: list[dict[str, str]] | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ImportJobStore:
    """Create, read and update import jobs on the caller's connection."""

    def __init__(self, conn: sa.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(
        self,
        *,
        app: str,
        form: str,
        mode: str,
        file_name: str,
        options: Mapping[str, Any],
        actor: int | None,
    ) -> int:
        now = self._clock()
        statement = (
            sa.insert(import_jobs)
            .values(
                app=app,
                form=form,
                status="pending",
                mode=mode,
                file_name=file_name[:255],
                options=dict(options),
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            .returning(import_jobs.c.id)
        )
        return int(self._conn.execute(statement).scalar_one())

    def get(
        self, *, job_id: int, app: str | None = None, form: str | None = None
    ) -> ImportJobRecord:
        """The job `job_id` (of that app and form, when given).

        Raises:
            NotFoundError: `transfer.job-not-found`.
        """
        query = sa.select(import_jobs).where(import_jobs.c.id == job_id)
        if app is not None:
            query = query.where(import_jobs.c.app == app)
        if form is not None:
            query = query.where(import_jobs.c.form == form)
        row = self._conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no import job {job_id}", code=JOB_NOT_FOUND)
        return ImportJobRecord(**dict(row))

    def save(
        self,
        *,
        job_id: int,
        status: str,
        counts: tuple[int, int, int],
        problems: list[dict[str, str]] | None = None,
        final: bool = False,
    ) -> None:
        """Store the job's status and (read, written, failed) counts."""
        now = self._clock()
        read, written, failed = counts
        values: dict[str, Any] = {
            "status": status,
            "rows_read": read,
            "rows_written": written,
            "rows_failed": failed,
            "updated_at": now,
        }
        if problems is not None:
            values["problems"] = problems
        if final:
            values["finished_at"] = now
        self._conn.execute(
            sa.update(import_jobs).where(import_jobs.c.id == job_id).values(**values)
        )


__all__ = ["JOB_NOT_FOUND", "ImportJobRecord", "ImportJobStore"]

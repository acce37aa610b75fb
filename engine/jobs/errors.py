"""How a handler fails an attempt on purpose, and the job error codes."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


class JobFailure(Exception):
    """Fail this attempt: the handler's work is rolled back and the job retried (or failed).

    `record` runs after the rollback, in the transaction that reschedules the job, for what must
    survive the failure (a delivery log row). `permanent` skips the remaining attempts.
    """

    def __init__(
        self,
        message: str,
        *,
        record: Callable[[sa.Connection], None] | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.record = record
        self.permanent = permanent


JOB_NOT_FOUND = "job.not-found"
JOB_NOT_RETRYABLE = "job.not-retryable"
JOB_KEY_ACTIVE = "job.key-active"

__all__ = ["JOB_KEY_ACTIVE", "JOB_NOT_FOUND", "JOB_NOT_RETRYABLE", "JobFailure"]

"""The import job's state: pending → running → done | failed, with row counts.

`done` means the import ran to the end: in `valid_rows` mode some rows may have failed (see the
error report); in `all_or_nothing` mode `done` means every row was written, and any bad row makes
the job `failed` with nothing written. `failed` also covers a file or column problem found before
any row was read (`problems`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import FieldError, TransitionError

ImportMode = Literal["all_or_nothing", "valid_rows"]
ImportStatus = Literal["pending", "running", "done", "failed"]
IMPORT_MODES: tuple[str, ...] = ("all_or_nothing", "valid_rows")
FINAL_STATUSES = frozenset({"done", "failed"})

_NEXT: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "failed"}),
    "running": frozenset({"running", "done", "failed"}),
    "done": frozenset(),
    "failed": frozenset(),
}


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Rows read from the file, written to the form, and rejected (so far)."""

    rows_read: int = 0
    rows_written: int = 0
    rows_failed: int = 0

    def add(self, *, read: int = 0, written: int = 0, failed: int = 0) -> ImportProgress:
        return ImportProgress(
            rows_read=self.rows_read + read,
            rows_written=self.rows_written + written,
            rows_failed=self.rows_failed + failed,
        )


@dataclass(frozen=True, slots=True)
class ImportJobState:
    """A job's status, counts and fatal problems; every change returns a new state."""

    status: ImportStatus = "pending"
    progress: ImportProgress = ImportProgress()
    problems: tuple[FieldError, ...] = ()

    def _to(self, status: ImportStatus, **changes: Any) -> ImportJobState:
        if status not in _NEXT[self.status]:
            raise TransitionError(
                f"an import job cannot go from {self.status} to {status}",
                code="transfer.bad-job-transition",
            )
        return dataclasses.replace(self, status=status, **changes)

    def start(self) -> ImportJobState:
        return self._to("running")

    def advance(self, progress: ImportProgress) -> ImportJobState:
        return self._to("running", progress=progress)

    def finish(self, progress: ImportProgress, *, mode: ImportMode) -> ImportJobState:
        """`done`, or `failed` when `all_or_nothing` met a bad row (then nothing was written)."""
        if mode == "all_or_nothing" and progress.rows_failed:
            return self._to("failed", progress=dataclasses.replace(progress, rows_written=0))
        return self._to("done", progress=progress)

    def fail(self, problems: tuple[FieldError, ...], progress: ImportProgress) -> ImportJobState:
        """Stop: the file or its columns cannot be imported; nothing (more) is written."""
        return self._to("failed", problems=problems, progress=progress)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


__all__ = [
    "FINAL_STATUSES",
    "IMPORT_MODES",
    "ImportJobState",
    "ImportMode",
    "ImportProgress",
    "ImportStatus",
]

"""Bulk edits' reports: what happened to each record of an all-or-nothing operation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError, FieldError, NotFoundError, SubmissionError

BULK_TOO_LARGE = "record.bulk-too-large"
MAX_BULK = 1000


@dataclass(frozen=True, slots=True)
class BulkItem:
    """What happened to one record of a bulk operation."""

    id: int
    ok: bool
    version: int | None = None
    code: str | None = None
    message: str | None = None
    errors: tuple[FieldError, ...] = ()
    reason: str | None = None  # "invalid", "conflict" or "not-found" when not ok

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "ok": self.ok}
        if self.ok:
            out["version"] = self.version
        else:
            out.update(code=self.code, reason=self.reason, message=self.message)
            out["errors"] = [error.to_dict() for error in self.errors]
        return out


@dataclass(frozen=True, slots=True)
class BulkReport:
    """All-or-nothing: `applied` is True only when every item is ok (else nothing changed)."""

    applied: bool
    items: tuple[BulkItem, ...] = field(default_factory=tuple)


def check_bulk_size(ids: Sequence[int]) -> None:
    if not ids or len(ids) > MAX_BULK:
        message = f"give 1 to {MAX_BULK} record ids"
        raise SubmissionError([FieldError("ids", BULK_TOO_LARGE, message)])


def out_of_reach(record_id: int) -> BulkItem:
    return BulkItem(
        id=record_id,
        ok=False,
        code="record.not-found",
        message=f"record {record_id} not found",
        reason="not-found",
    )


def failed(record_id: int, err: EngineError) -> BulkItem:
    errors = err.errors if isinstance(err, SubmissionError) else ()
    reason = "invalid" if errors else "not-found" if isinstance(err, NotFoundError) else "conflict"
    return BulkItem(
        id=record_id, ok=False, code=err.code, message=err.message, errors=errors, reason=reason
    )


__all__ = [
    "BULK_TOO_LARGE",
    "MAX_BULK",
    "BulkItem",
    "BulkReport",
    "check_bulk_size",
    "failed",
    "out_of_reach",
]

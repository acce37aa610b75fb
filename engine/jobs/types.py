"""What a job handler receives. Handlers run in the unit of work that marks the job done, so a
handler's database effects and the job's completion commit together (exactly once)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class JobContext:
    uow: UnitOfWork
    job_id: int
    kind: str
    payload: Mapping[str, Any]
    attempt: int  # 1 for the first run
    now: datetime
    worker: str


JobHandler = Callable[[JobContext], None]

__all__ = ["JobContext", "JobHandler"]

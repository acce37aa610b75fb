"""Small values shared by the flow runtime and the task service (kept apart to avoid cycles)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TaskOutcome = Literal["approved", "rejected", "done", "returned"]


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """A running flow instance, as the task service needs it."""

    id: int
    app: str
    flow: str
    version: int
    form: str | None
    record_id: int | None
    initiator_id: int | None


@dataclass(frozen=True, slots=True)
class TaskOpening:
    """What opening a user-task node did: the tasks created, or `skipped` (nobody to assign and
    the node says skip) so the runtime moves on at once."""

    task_ids: tuple[int, ...]
    skipped: bool = False


__all__ = ["InstanceRef", "TaskOpening", "TaskOutcome"]

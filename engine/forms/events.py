"""Record change events: what every write path reports, inside its own transaction.

Flows (triggers), SLA tracking, audit and report caches listen here instead of being called
from each write path, so the API, imports, bulk edits, flow actions and recomputations all fire
the same events. A listener runs in the writer's unit of work: what it writes (flow state, jobs,
outbox rows) commits or rolls back together with the record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from engine.storage.form_records import StoredRecord
    from engine.storage.uow import UnitOfWork

ChangeKind = Literal["created", "updated", "deleted", "restored"]
ChangeSource = Literal["api", "import", "bulk", "flow", "system"]

MAX_CHANGE_DEPTH = 16  # writes caused by writes caused by writes…: deeper is a loop


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One record written. `before` is None for a create; `changed` lists the field keys whose
    value differs (every stored field for a create). `depth` counts the listener-caused writes
    that led here (0 for a user's own write), for loop protection."""

    app: str
    form: str
    record_id: int
    kind: ChangeKind
    before: StoredRecord | None
    after: StoredRecord
    changed: frozenset[str]
    actor_id: int | None
    source: ChangeSource
    depth: int = 0

    def value(self, key: str) -> Any:
        return self.after.values.get(key)


class ChangeListener(Protocol):
    """Called once per written record, before the writer commits."""

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None: ...


def notify_listeners(
    listeners: Sequence[ChangeListener], uow: UnitOfWork, change: RecordChange
) -> None:
    for listener in listeners:
        listener(uow, change)


def changed_keys(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> frozenset[str]:
    if before is None:
        return frozenset(after)
    return frozenset(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))


__all__ = [
    "MAX_CHANGE_DEPTH",
    "ChangeKind",
    "ChangeListener",
    "ChangeSource",
    "RecordChange",
    "changed_keys",
    "notify_listeners",
]

"""Record change events: what every write path reports, inside its own transaction.

Flows (triggers), SLA tracking, audit and report caches listen here instead of being called
from each write path, so the API, imports, bulk edits, flow actions and recomputations all fire
the same events. A listener runs in the writer's unit of work: what it writes (flow state, jobs,
outbox rows) commits or rolls back together with the record.

A listener that derives field values from the record (SLA deadlines) may also *amend* the write
that fires it instead of writing the record a second time: the record writer calls its `amend`
before the row is stored, validates the amended values with the submission (formulas see them)
and stores everything in one INSERT or UPDATE with one history entry and one change event.
Its `then` runs once the row is stored (the id is known), before the change listeners, and the
event says `amended=True` so the listener does not handle the change again. Writers that do not
amend (imports) fire `amended=False`: the listener then writes the fields itself, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from engine.registry import FormDefinition
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
    amended: bool = False  # the amending listeners already amended this write (see above)

    def value(self, key: str) -> Any:
        return self.after.values.get(key)


class ChangeListener(Protocol):
    """Called once per written record, before the writer commits."""

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A create or update about to be stored, as amending listeners see it. `values` are the
    validated values to store (every field, amendments of earlier listeners included);
    `record_id` and `before` are None for a create; `definition` is the form written."""

    app: str
    form: str
    definition: FormDefinition
    kind: Literal["created", "updated"]
    record_id: int | None
    before: StoredRecord | None
    values: Mapping[str, Any]
    actor_id: int | None
    source: ChangeSource
    depth: int


@dataclass(frozen=True, slots=True)
class Amendment:
    """Field values added to a pending write, and what to do once the row is stored."""

    values: Mapping[str, Any]
    then: Callable[[UnitOfWork, RecordChange], None] | None = None


@runtime_checkable
class AmendingListener(ChangeListener, Protocol):
    """A listener that may also amend the write before it is stored (None: nothing to add)."""

    def amend(self, uow: UnitOfWork, pending: PendingWrite) -> Amendment | None: ...


def amenders(listeners: Sequence[ChangeListener]) -> list[AmendingListener]:
    return [listener for listener in listeners if isinstance(listener, AmendingListener)]


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
    "AmendingListener",
    "Amendment",
    "ChangeKind",
    "ChangeListener",
    "ChangeSource",
    "PendingWrite",
    "RecordChange",
    "amenders",
    "changed_keys",
    "notify_listeners",
]

"""Relations written by a signed-in user must point at records that user may read.

A record change listener (engine/forms/events.py): when a restricted actor's create, update,
bulk edit or import sets a relation, every target id must be in the actor's read scope of the
target form, or the write fails like a missing target (`record.missing-relation`), so the
answer says nothing about records the actor cannot see. It runs inside the writer's
transaction, so a refused write leaves nothing behind. Flows and system writes (no actor, or
source "flow"/"system") are trusted.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from engine.errors import FieldError, SubmissionError
from engine.forms.events import RecordChange
from engine.forms.fields import RelationField
from engine.forms.record_access import form_accesses, ids_in_scope
from engine.identity.service import load_actor
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.form_records import build_record_layout
from engine.storage.uow import UnitOfWork

MISSING_RELATION = "record.missing-relation"  # the writer's own code for a missing target
CHECKED_SOURCES = frozenset({"api", "bulk", "import"})


class RelationScopeGuard:
    """The listener; it keeps its own compiled forms and target tables per form version."""

    def __init__(self, registry: DefinitionRegistry | None = None) -> None:
        self._registry = registry or DefinitionRegistry()
        self._tables: dict[tuple[FormDefinition, str], sa.Table] = {}
        self._lock = threading.Lock()

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        if change.actor_id is None or change.source not in CHECKED_SOURCES:
            return
        if change.kind not in ("created", "updated"):
            return
        definition = self._registry.form(uow, app=change.app, key=change.form)
        wanted = _relation_ids(definition, change)
        if not wanted:
            return
        actor = load_actor(uow=uow, user_id=change.actor_id)
        if actor.is_admin:
            return
        accesses = form_accesses(uow=uow, who=actor, app=change.app, forms=list(wanted))
        errors: list[FieldError] = []
        for target, pairs in wanted.items():
            table = self._table(definition, target)
            ids = [record_id for _loc, record_id in pairs]
            reached = ids_in_scope(
                uow.conn, accesses[target], table, ids, who=actor, now=uow.clock()
            )
            errors += [
                FieldError(loc, MISSING_RELATION, f"no live {target} record {record_id}")
                for loc, record_id in pairs
                if record_id not in reached
            ]
        if errors:
            raise SubmissionError(errors)

    def _table(self, definition: FormDefinition, target: str) -> sa.Table:
        with self._lock:
            found = self._tables.get((definition, target))
        if found is None:
            layout = build_record_layout(
                app=definition.app, form=definition.compiled, forms=definition.forms
            )
            found = layout.tables[target].main
            with self._lock:
                if len(self._tables) > 512:
                    self._tables.clear()
                self._tables[(definition, target)] = found
        return found


def _relation_ids(
    definition: FormDefinition, change: RecordChange
) -> dict[str, list[tuple[str, int]]]:
    """Target form → (path, id) of every same-app relation value the change writes.

    Relations in subform rows count like the form's own (path `items/0/part`): the rows of a
    changed subform are written again as a whole.
    """
    wanted: dict[str, list[tuple[str, int]]] = {}
    compiled = definition.compiled
    for key in sorted(change.changed):
        value = change.after.values.get(key)
        children = compiled.subform_fields.get(key)
        if children is not None:
            for index, row in enumerate(value if isinstance(value, list) else []):
                for child, spec in children.items():
                    if isinstance(row, dict) and child in row:
                        _add(wanted, spec, f"{key}/{index}/{child}", row[child])
        else:
            _add(wanted, compiled.fields.get(key), key, value)
    return wanted


def _add(wanted: dict[str, list[tuple[str, int]]], spec: Any, loc: str, value: Any) -> None:
    if not isinstance(spec, RelationField) or "." in str(spec.form):
        return
    wanted.setdefault(str(spec.form), []).extend((loc, record_id) for record_id in _ids(value))


def _ids(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [int(v) for v in items if isinstance(v, int) and not isinstance(v, bool)]


__all__ = ["CHECKED_SOURCES", "MISSING_RELATION", "RelationScopeGuard"]

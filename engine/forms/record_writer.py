"""Record writes inside a caller's unit of work, each one reported to the change listeners.

`RecordWriter` is the one place that validates, stores, writes history and fires the
`RecordChange` of a record write. The records service opens a unit of work per request and
writes through it (source "api", depth 0); engine code that already holds a unit of work (flow
actions, SLA) gets one from `RecordService.writer` and its writes commit with the caller's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.errors import ConflictError, EngineError, PermissionDenied
from engine.forms.events import (
    MAX_CHANGE_DEPTH,
    ChangeKind,
    ChangeListener,
    ChangeSource,
    PendingWrite,
    RecordChange,
    amenders,
    changed_keys,
    notify_listeners,
)
from engine.forms.record_access import (
    Who,
    departments_of,
    form_access,
    ids_in_scope,
    require_in_scope,
    user_id_of,
)
from engine.forms.record_json import (
    comparable,
    field_keys,
    history_changes,
    is_autonumber,
    related_names,
    writable_values,
)
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, require, require_writable
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.form_records import (
    COMPUTED,
    STALE_VERSION,
    SYSTEM_FIELDS,
    FormRecordStore,
    RecordConflict,
    RecordLayout,
    StoredRecord,
    build_record_layout,
    written_children,
)
from engine.storage.record_meta import RecordMetaStore
from engine.storage.uow import UnitOfWork

APPEND_ONLY = "record.append-only"
AfterStore = Callable[[UnitOfWork, RecordChange], None]
CHANGE_LOOP = "record.change-loop"


class ChangeLoopError(EngineError):
    """Listeners kept writing records that caused more writes: the transaction rolls back."""

    code = CHANGE_LOOP


class FormKit:
    """What every writer of one database shares: registry, clock, listeners, layout caches."""

    def __init__(
        self,
        *,
        registry: DefinitionRegistry,
        clock: Callable[[], datetime],
        listeners: Sequence[ChangeListener],
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.listeners = listeners
        self._layouts: dict[FormDefinition, RecordLayout] = {}
        self._names: dict[FormDefinition, frozenset[str]] = {}
        self._lock = threading.Lock()

    def layout(self, definition: FormDefinition) -> RecordLayout:
        """The storage layout of a compiled form, built once per definition."""
        with self._lock:
            found = self._layouts.get(definition)
        if found is not None:
            return found
        built = build_record_layout(
            app=definition.app, form=definition.compiled, forms=definition.forms
        )
        with self._lock:
            if len(self._layouts) > 256:
                self._layouts.clear()
                self._names.clear()
            self._layouts[definition] = built
        return built

    def related_names(self, definition: FormDefinition, layout: RecordLayout) -> frozenset[str]:
        found = self._names.get(definition)
        if found is None:
            found = related_names(definition, layout)
            self._names[definition] = found
        return found

    def open(self, uow: UnitOfWork, app: str, form: str) -> tuple[FormDefinition, FormRecordStore]:
        definition = self.registry.form(uow, app=app, key=form)
        store = FormRecordStore(uow.conn, layout=self.layout(definition), clock=self.clock)
        return definition, store


class RecordWriter:
    """Record writes in one unit of work; the caller commits (or its error rolls back)."""

    def __init__(self, uow: UnitOfWork, kit: FormKit, *, source: ChangeSource, depth: int) -> None:
        self.uow = uow
        self.source: ChangeSource = source
        self.depth = depth
        self._kit = kit

    # --- the engine's API: permissions only for a real actor (None is the system) -------------

    def create(self, app: str, form: str, data: Mapping[str, Any], *, actor: Who) -> StoredRecord:
        definition, store = self._kit.open(self.uow, app, form)
        if actor is not None:
            access = form_access(uow=self.uow, who=actor, app=app, form=form)
            require(access, "create")
            require_writable(access, field_keys(store.layout, data))
        return self.insert(definition, store, data, actor=actor)

    def update(
        self,
        app: str,
        form: str,
        record_id: int,
        data: Mapping[str, Any],
        *,
        actor: Who,
        version: int | None = None,
    ) -> StoredRecord:
        definition, store = self._kit.open(self.uow, app, form)
        if actor is not None:
            access = form_access(uow=self.uow, who=actor, app=app, form=form)
            self.check(store, access, record_id, who=actor, action="update")
            require_writable(access, field_keys(store.layout, data))
        refuse_append_only(definition)
        return self.change(definition, store, record_id, data, version=version, actor=actor)

    def delete(self, app: str, form: str, record_id: int, *, actor: Who) -> StoredRecord:
        definition, store = self._kit.open(self.uow, app, form)
        if actor is not None:
            access = form_access(uow=self.uow, who=actor, app=app, form=form)
            self.check(store, access, record_id, who=actor, action="delete")
        refuse_append_only(definition)
        return self.remove(definition, store, record_id, version=None, actor=actor)

    def get(self, app: str, form: str, record_id: int) -> StoredRecord:
        _definition, store = self._kit.open(self.uow, app, form)
        return store.get(record_id=record_id)

    # --- the steps, after the caller's permission checks ---------------------------------------

    def check(
        self,
        store: FormRecordStore,
        access: FormAccess,
        record_id: int,
        *,
        who: Who,
        action: str,
        include_deleted: bool = False,
    ) -> None:
        """404 unless the actor can read the record; 403 unless `action` reaches it too."""
        conn, main, now = self.uow.conn, store.layout.main, self._kit.clock()
        require_in_scope(
            conn, access, main, record_id, who=who, now=now, include_deleted=include_deleted
        )
        if action == "read":
            return
        require(access, action)
        if not isinstance(who, Actor) or access.is_unrestricted(action):
            return  # `action` reaches every record that exists: the read check found this one
        reached = ids_in_scope(
            conn,
            access,
            main,
            [record_id],
            who=who,
            now=now,
            action=action,
            include_deleted=include_deleted,
        )
        if record_id not in reached:
            raise PermissionDenied(f"you may not {action} record {record_id}")

    def insert(
        self,
        definition: FormDefinition,
        store: FormRecordStore,
        data: Mapping[str, Any],
        *,
        actor: Who,
        after_insert: Callable[[int], None] | None = None,
    ) -> StoredRecord:
        """Validate and store a new record with its history; `after_insert` runs before the
        listeners (the API saves its idempotency key there)."""
        self._guard()
        clean = self.validate(store, definition, data, current=None, actor=actor)
        clean, then = self._amend(definition, store, None, clean, actor)
        clean = {k: v for k, v in clean.items() if not is_autonumber(store.layout, k)}
        user = user_id_of(actor)
        record_id = store.insert(values=clean, actor=user)
        record = store.get(record_id=record_id, known=written_children(store.layout, clean))
        changes = history_changes(definition, store.layout, {}, record.values)
        self._history(definition, record_id, 1, "create", changes, user)
        if after_insert is not None:
            after_insert(record_id)
        self._fire(definition, "created", None, record, user, then)
        return record

    def change(
        self,
        definition: FormDefinition,
        store: FormRecordStore,
        record_id: int,
        data: Mapping[str, Any],
        *,
        version: int | None,
        actor: Who,
    ) -> StoredRecord:
        """Change the fields in `data` of a record (at `version` when given); returns it."""
        self._guard()
        layout = store.layout
        current = store.get(record_id=record_id)
        expected = current.version if version is None else version
        if current.version != expected:
            message = f"record {record_id} is at version {current.version}, not {expected}"
            raise RecordConflict(message, code=STALE_VERSION)
        stored = {**current.values, **{name: getattr(current, name) for name in SYSTEM_FIELDS}}
        clean = self.validate(store, definition, data, current=stored, actor=actor)
        changed = _differing(layout, clean, current)
        if not changed:
            return current
        clean, then = self._amend(definition, store, current, clean, actor)
        if then is not None:
            changed = _differing(layout, clean, current)
        user = user_id_of(actor)
        new_version = store.update(
            record_id=record_id, version=expected, changes=changed, actor=user, record=clean
        )
        after = store.get(record_id=record_id)
        changes = history_changes(definition, layout, current.values, after.values, keys=changed)
        self._history(definition, record_id, new_version, "update", changes, user)
        self._fire(definition, "updated", current, after, user, then)
        return after

    def remove(
        self,
        definition: FormDefinition,
        store: FormRecordStore,
        record_id: int,
        *,
        version: int | None,
        actor: Who,
    ) -> StoredRecord:
        """Soft-delete a record (refused while records that `refuse` refer to it)."""
        self._guard()
        before = store.get(record_id=record_id) if self._kit.listeners else None
        user = user_id_of(actor)
        new_version = store.soft_delete(record_id=record_id, actor=user, version=version)
        self._history(definition, record_id, new_version, "delete", {}, user)
        after = store.get(record_id=record_id, include_deleted=True)
        self._fire(definition, "deleted", before, after, user)
        return after

    def bring_back(
        self, definition: FormDefinition, store: FormRecordStore, record_id: int, *, actor: Who
    ) -> StoredRecord:
        """Restore a soft-deleted record."""
        self._guard()
        listened = bool(self._kit.listeners)
        before = store.get(record_id=record_id, include_deleted=True) if listened else None
        user = user_id_of(actor)
        new_version = store.restore(record_id=record_id, actor=user)
        self._history(definition, record_id, new_version, "restore", {}, user)
        after = store.get(record_id=record_id)
        self._fire(definition, "restored", before, after, user)
        return after

    def _amend(
        self,
        definition: FormDefinition,
        store: FormRecordStore,
        before: StoredRecord | None,
        clean: dict[str, Any],
        actor: Who,
    ) -> tuple[dict[str, Any], list[AfterStore] | None]:
        """Let amending listeners add values to a pending create (`before` None) or update; the
        values they add are validated with the write. Returns the values to store and what the
        listeners run once the row is stored (None when no listener amends)."""
        found = amenders(self._kit.listeners)
        if not found:
            return clean, None
        values, added, then = dict(clean), dict[str, Any](), list[AfterStore]()
        for listener in found:
            pending = PendingWrite(
                app=definition.app,
                form=definition.key,
                definition=definition,
                kind="created" if before is None else "updated",
                record_id=None if before is None else before.id,
                before=before,
                values=values,
                actor_id=user_id_of(actor),
                source=self.source,
                depth=self.depth,
            )
            amendment = listener.amend(self.uow, pending)
            if amendment is None:
                continue
            added.update(amendment.values)
            values.update(amendment.values)
            if amendment.then is not None:
                then.append(amendment.then)
        if added:  # validated over the values in hand: formulas that read them follow
            system = {} if before is None else {n: getattr(before, n) for n in SYSTEM_FIELDS}
            current = {**clean, **system}
            clean = self.validate(store, definition, added, current=current, actor=actor)
        return clean, then

    # --- validation -----------------------------------------------------------------------------

    def validate(
        self,
        store: FormRecordStore,
        definition: FormDefinition,
        data: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None,
        actor: Who,
    ) -> dict[str, Any]:
        """The stored values of a submission validated like any write (file refs resolved)."""
        from engine.forms.attachments import resolve_file_refs
        from engine.forms.validation import EvalContext, validate_submission

        context = EvalContext(
            now=self._kit.clock(),
            actor=user_id_of(actor),
            departments=departments_of(actor),
            timezone="UTC",
        )
        data = resolve_file_refs(conn=store.conn, form=definition.compiled, data=data)
        related = self._related(store, definition, data, current=current)
        if current is not None:  # stored lookups may follow a relation the data changes
            current = {k: v for k, v in current.items() if k not in related}
        clean = validate_submission(
            definition.compiled, data, current=current, context=context, related=related
        )
        return writable_values(store.layout, clean)

    def _related(
        self,
        store: FormRecordStore,
        definition: FormDefinition,
        data: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Values of the related records the form's expressions read (`device.model`, lookups)."""
        names = self._kit.related_names(definition, store.layout)
        if not names:
            return {}
        ids: dict[str, int] = {}
        for name in names:
            slot = store.layout.slot(name.split(".", 1)[0])
            relation = (
                str(slot.spec.relation) if slot and slot.kind == COMPUTED else name.split(".")[0]
            )
            raw = data[relation] if relation in data else (current or {}).get(relation)
            if isinstance(raw, int) and not isinstance(raw, bool):
                ids[relation] = raw
            elif isinstance(raw, str) and raw.strip().isdigit():
                ids[relation] = int(raw)
        return store.related_values(names=names, ids=ids) if ids else {}

    # --- history and events ---------------------------------------------------------------------

    def _history(
        self,
        definition: FormDefinition,
        record_id: int,
        version: int,
        action: str,
        changes: dict[str, list[Any]],
        user: int | None,
    ) -> None:
        meta = RecordMetaStore(
            self.uow.conn, app=definition.app, form=definition.key, clock=self._kit.clock
        )
        meta.add_history(
            record_id=record_id, version=version, action=action, changes=changes, actor=user
        )

    def _guard(self) -> None:
        if self.depth > MAX_CHANGE_DEPTH:
            raise ChangeLoopError(
                f"record writes caused by record changes went {self.depth} levels deep "
                f"(at most {MAX_CHANGE_DEPTH}): a flow or listener keeps triggering itself",
                code=CHANGE_LOOP,
            )

    def _fire(
        self,
        definition: FormDefinition,
        kind: ChangeKind,
        before: StoredRecord | None,
        after: StoredRecord,
        user: int | None,
        then: list[AfterStore] | None = None,
    ) -> None:
        """Run the amending listeners' follow-ups (when they amended), then every listener."""
        if not self._kit.listeners:
            return
        change = RecordChange(
            app=definition.app,
            form=definition.key,
            record_id=after.id,
            kind=kind,
            before=before,
            after=after,
            changed=changed_keys(None if before is None else before.values, after.values),
            actor_id=user,
            source=self.source,
            depth=self.depth,
            amended=then is not None,
        )
        for follow_up in then or ():
            follow_up(self.uow, change)
        notify_listeners(self._kit.listeners, self.uow, change)


def _differing(
    layout: RecordLayout, clean: Mapping[str, Any], current: StoredRecord
) -> dict[str, Any]:
    """The values of `clean` that change the stored record."""
    return {
        key: value
        for key, value in clean.items()
        if not is_autonumber(layout, key)
        and comparable(layout, key, value) != comparable(layout, key, current.values.get(key))
    }


def refuse_append_only(definition: FormDefinition) -> None:
    if definition.compiled.spec.append_only:
        raise ConflictError(
            f"form {definition.key!r} is append-only: records cannot change", code=APPEND_ONLY
        )


__all__ = [
    "APPEND_ONLY",
    "CHANGE_LOOP",
    "ChangeLoopError",
    "FormKit",
    "RecordWriter",
    "refuse_append_only",
]

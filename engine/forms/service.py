"""The records service: create, read, update, delete, restore, history, comments and bulk edits.

Each call is one unit of work: it loads the compiled form from the registry, validates through
`validate_submission`, writes the record, its child rows and its history, and commits once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import (
    ConflictError,
    EngineError,
    FieldError,
    NotFoundError,
    PermissionDenied,
    SubmissionError,
)
from engine.forms.events import ChangeListener
from engine.forms.record_access import (
    Who,
    departments_of,
    form_access,
    ids_in_scope,
    read_scope,
    require_in_scope,
    user_id_of,
)
from engine.identity.permissions import FormAccess, require, require_writable
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.conflicts import UNIQUE, ConstraintConflict
from engine.storage.form_records import (
    COMPUTED,
    LINKS,
    PARTS,
    STALE_VERSION,
    STORED,
    SUBFORM,
    SYSTEM_FIELDS,
    FormRecordStore,
    RecordConflict,
    RecordLayout,
    StoredRecord,
    build_record_layout,
    written_children,
)
from engine.storage.record_meta import CommentRecord, HistoryEntry, RecordMetaStore
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

IDEMPOTENCY_MISMATCH = "record.idempotency-mismatch"
APPEND_ONLY = "record.append-only"
BAD_COMMENT = "record.bad-comment"
BULK_TOO_LARGE = "record.bulk-too-large"
MAX_BULK = 1000
MAX_COMMENT = 20_000
_WRITABLE = (STORED, PARTS, SUBFORM, LINKS)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A record with the definition it was read with (to serialise it)."""

    definition: FormDefinition
    record: StoredRecord
    replayed: bool = False  # an idempotent create that returned the earlier record
    access: FormAccess | None = None  # the reader's access: hidden fields are left out

    def to_json(self) -> dict[str, Any]:
        return record_to_json(self.definition, self.record, access=self.access)


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


class RecordService:
    """Record use cases over one database; owned by the app like the registry it uses."""

    def __init__(
        self,
        *,
        db: sa.Engine | sa.Connection,
        registry: DefinitionRegistry,
        clock: Callable[[], datetime] = utc_now,
        listeners: Sequence[ChangeListener] = (),
    ) -> None:
        self._db = db
        self._registry = registry
        self._clock = clock
        self._listeners = listeners  # told of every write before it commits (events.py)
        self._layouts: dict[FormDefinition, RecordLayout] = {}
        self._names: dict[FormDefinition, frozenset[str]] = {}
        self._lock = threading.Lock()

    # --- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _unit(
        self, app: str, form: str
    ) -> Iterator[tuple[UnitOfWork, FormDefinition, FormRecordStore]]:
        with UnitOfWork(self._db, clock=self._clock) as uow:
            definition = self._registry.form(uow, app=app, key=form)
            store = FormRecordStore(uow.conn, layout=self.layout(definition), clock=self._clock)
            yield uow, definition, store

    def _check(
        self,
        uow: UnitOfWork,
        store: FormRecordStore,
        access: FormAccess,
        record_id: int,
        *,
        who: Who,
        action: str,
        include_deleted: bool = False,
    ) -> None:
        """404 unless the actor can read the record; 403 unless `action` reaches it too."""
        main, now = store.layout.main, self._clock()
        require_in_scope(
            uow.conn, access, main, record_id, who=who, now=now, include_deleted=include_deleted
        )
        if action == "read":
            return
        require(access, action)
        reached = ids_in_scope(
            uow.conn,
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

    def definition(self, *, app: str, form: str) -> FormDefinition:
        """The compiled current definition of a form (NotFoundError if there is none)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            return self._registry.form(uow, app=app, key=form)

    def access(self, *, app: str, form: str, actor: Who) -> FormAccess:
        """The actor's access to the form (for routes that describe it, like its schema)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            self._registry.form(uow, app=app, key=form)
            return form_access(uow=uow, who=actor, app=app, form=form)

    def _meta(self, uow: UnitOfWork, app: str, form: str) -> RecordMetaStore:
        return RecordMetaStore(uow.conn, app=app, form=form, clock=self._clock)

    def _validate(
        self,
        store: FormRecordStore,
        definition: FormDefinition,
        data: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None,
        actor: Who,
    ) -> dict[str, Any]:
        from engine.forms.attachments import resolve_file_refs
        from engine.forms.validation import EvalContext, validate_submission

        context = EvalContext(
            now=self._clock(),
            actor=user_id_of(actor),
            departments=departments_of(actor),
            timezone="UTC",
        )
        data = resolve_file_refs(conn=store.conn, form=definition.compiled, data=data)
        related = self._related(store, definition, data, current=current)
        if current is not None:  # stored lookups may follow a relation the data changes
            current = {k: v for k, v in current.items() if k not in related}
        return validate_submission(
            definition.compiled, data, current=current, context=context, related=related
        )

    def _related(
        self,
        store: FormRecordStore,
        definition: FormDefinition,
        data: Mapping[str, Any],
        *,
        current: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Values of the related records the form's expressions read (`device.model`, lookups)."""
        names = self._related_names(definition, store.layout)
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

    def _related_names(self, definition: FormDefinition, layout: RecordLayout) -> frozenset[str]:
        found = self._names.get(definition)
        if found is None:
            found = related_names(definition, layout)
            self._names[definition] = found
        return found

    # --- single records -----------------------------------------------------------------------

    def create(
        self,
        *,
        app: str,
        form: str,
        data: Mapping[str, Any],
        actor: Who,
        idempotency_key: str | None = None,
    ) -> RecordResult:
        """Validate and store a new record; the same idempotency key returns the same record.

        Raises:
            SubmissionError: invalid data (every problem at once), missing relation targets.
            ConflictError: a unique value is taken, or the key was used with another payload.
        """
        digest = _digest(data)
        for attempt in (1, 2):
            try:
                return self._create(
                    app, form, data, actor=actor, key=idempotency_key, digest=digest
                )
            except ConstraintConflict as err:
                # Another request with the same key won the race; the retry finds its record.
                if attempt == 2 or idempotency_key is None or err.code != UNIQUE:
                    raise
        raise AssertionError("unreachable")

    def _create(
        self,
        app: str,
        form: str,
        data: Mapping[str, Any],
        *,
        actor: Who,
        key: str | None,
        digest: str,
    ) -> RecordResult:
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            require(access, "create")
            require_writable(access, _field_keys(store.layout, data))
            meta = self._meta(uow, app, form)
            if key is not None:
                seen = meta.find_idempotency(key=key)
                if seen is not None:
                    return self._replay(
                        definition,
                        store,
                        seen=seen.request_digest,
                        digest=digest,
                        record_id=seen.record_id,
                        access=access,
                    )
            clean = _writable(
                store.layout, self._validate(store, definition, data, current=None, actor=actor)
            )
            clean = {k: v for k, v in clean.items() if not _is_autonumber(store.layout, k)}
            user = user_id_of(actor)
            record_id = store.insert(values=clean, actor=user)
            known = written_children(store.layout, clean)
            record = store.get(record_id=record_id, known=known)
            changes = _changes(definition, store.layout, {}, record.values)
            meta.add_history(
                record_id=record_id, version=1, action="create", changes=changes, actor=user
            )
            if key is not None:
                meta.save_idempotency(key=key, record_id=record_id, request_digest=digest)
            uow.commit()
        return RecordResult(definition, record, access=access)

    def _replay(
        self,
        definition: FormDefinition,
        store: FormRecordStore,
        *,
        seen: str,
        digest: str,
        record_id: int,
        access: FormAccess,
    ) -> RecordResult:
        if seen != digest:
            raise ConflictError(
                "this idempotency key was used with a different request", code=IDEMPOTENCY_MISMATCH
            )
        record = store.get(record_id=record_id, include_deleted=True)
        return RecordResult(definition, record, replayed=True, access=access)

    def get(
        self,
        *,
        app: str,
        form: str,
        record_id: int,
        include_deleted: bool = False,
        actor: Who = None,
    ) -> RecordResult:
        """One record; out of the actor's read scope it is not found (404), like a missing one."""
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            require(access, "read")
            where = read_scope(uow.conn, access, store.layout.main, who=actor, now=self._clock())
            record = store.get(record_id=record_id, include_deleted=include_deleted, where=where)
        return RecordResult(definition, record, access=access)

    def update(
        self,
        *,
        app: str,
        form: str,
        record_id: int,
        data: Mapping[str, Any],
        version: int,
        actor: Who,
    ) -> RecordResult:
        """Change the fields in `data` of a record still at `version`.

        Raises:
            ConflictError: `record.stale-version` (nothing changed), unique conflicts.
        """
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(uow, store, access, record_id, who=actor, action="update")
            require_writable(access, _field_keys(store.layout, data))
            _refuse_append_only(definition)
            self._update_one(
                uow, definition, store, record_id, data=data, version=version, actor=actor
            )
            record = store.get(record_id=record_id)
            uow.commit()
        return RecordResult(definition, record, access=access)

    def _update_one(
        self,
        uow: UnitOfWork,
        definition: FormDefinition,
        store: FormRecordStore,
        record_id: int,
        *,
        data: Mapping[str, Any],
        version: int | None,
        actor: Who,
    ) -> int:
        current = store.get(record_id=record_id)
        expected = current.version if version is None else version
        if current.version != expected:
            message = f"record {record_id} is at version {current.version}, not {expected}"
            raise RecordConflict(message, code=STALE_VERSION)
        stored = {**current.values, **{name: getattr(current, name) for name in SYSTEM_FIELDS}}
        clean = _writable(
            store.layout, self._validate(store, definition, data, current=stored, actor=actor)
        )
        changed = {
            key: value
            for key, value in clean.items()
            if not _is_autonumber(store.layout, key)
            and _comparable(store.layout, key, value)
            != _comparable(store.layout, key, current.values.get(key))
        }
        if not changed:
            return current.version
        user = user_id_of(actor)
        new_version = store.update(
            record_id=record_id, version=expected, changes=changed, actor=user, record=clean
        )
        after = store.get(record_id=record_id).values
        changes = _changes(definition, store.layout, current.values, after, keys=changed)
        self._meta(uow, definition.app, definition.key).add_history(
            record_id=record_id, version=new_version, action="update", changes=changes, actor=user
        )
        return new_version

    def delete(
        self, *, app: str, form: str, record_id: int, actor: Who, version: int | None = None
    ) -> RecordResult:
        """Soft-delete a record (refused while records that `refuse` refer to it)."""
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(uow, store, access, record_id, who=actor, action="delete")
            _refuse_append_only(definition)
            self._delete_one(uow, definition, store, record_id, version=version, actor=actor)
            record = store.get(record_id=record_id, include_deleted=True)
            uow.commit()
        return RecordResult(definition, record, access=access)

    def _delete_one(
        self,
        uow: UnitOfWork,
        definition: FormDefinition,
        store: FormRecordStore,
        record_id: int,
        *,
        version: int | None,
        actor: Who,
    ) -> int:
        user = user_id_of(actor)
        new_version = store.soft_delete(record_id=record_id, actor=user, version=version)
        self._meta(uow, definition.app, definition.key).add_history(
            record_id=record_id, version=new_version, action="delete", changes={}, actor=user
        )
        return new_version

    def restore(self, *, app: str, form: str, record_id: int, actor: Who) -> RecordResult:
        """Bring back a soft-deleted record (needs `delete` on it, like deleting)."""
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(
                uow, store, access, record_id, who=actor, action="delete", include_deleted=True
            )
            user = user_id_of(actor)
            new_version = store.restore(record_id=record_id, actor=user)
            self._meta(uow, app, form).add_history(
                record_id=record_id, version=new_version, action="restore", changes={}, actor=user
            )
            record = store.get(record_id=record_id)
            uow.commit()
        return RecordResult(definition, record, access=access)

    # --- history and comments -----------------------------------------------------------------

    def history(
        self, *, app: str, form: str, record_id: int, actor: Who = None
    ) -> list[HistoryEntry]:
        """The record's writes, oldest first, without changes of fields the actor cannot see."""
        with self._unit(app, form) as (uow, _definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(
                uow, store, access, record_id, who=actor, action="read", include_deleted=True
            )
            entries = self._meta(uow, app, form).list_history(record_id=record_id)
        return [replace(entry, changes=access.strip(entry.changes)) for entry in entries]

    def add_comment(
        self, *, app: str, form: str, record_id: int, body: str, actor: Who
    ) -> CommentRecord:
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_COMMENT:
            message = f"a comment is 1 to {MAX_COMMENT} characters of text"
            raise SubmissionError([FieldError("body", BAD_COMMENT, message)])
        with self._unit(app, form) as (uow, _definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(uow, store, access, record_id, who=actor, action="read")
            comment = self._meta(uow, app, form).add_comment(
                record_id=record_id, body=body, actor=user_id_of(actor)
            )
            uow.commit()
        return comment

    def list_comments(
        self, *, app: str, form: str, record_id: int, actor: Who = None
    ) -> list[CommentRecord]:
        with self._unit(app, form) as (uow, _definition, store):
            access = form_access(uow=uow, who=actor, app=app, form=form)
            self._check(
                uow, store, access, record_id, who=actor, action="read", include_deleted=True
            )
            return self._meta(uow, app, form).list_comments(record_id=record_id)

    # --- bulk ---------------------------------------------------------------------------------

    def bulk_update(
        self,
        *,
        app: str,
        form: str,
        ids: Sequence[int],
        data: Mapping[str, Any],
        actor: Who,
        versions: Mapping[int, int] | None = None,
    ) -> BulkReport:
        """The same changes to every record, all or nothing, with a report per record."""
        _check_bulk_size(ids)
        expected = versions or {}

        def step(
            uow: UnitOfWork, definition: FormDefinition, store: FormRecordStore, rid: int
        ) -> int:
            _refuse_append_only(definition)
            return self._update_one(
                uow, definition, store, rid, data=data, version=expected.get(rid), actor=actor
            )

        return self._bulk(app, form, ids, step, who=actor, action="update", keys=tuple(data))

    def bulk_delete(self, *, app: str, form: str, ids: Sequence[int], actor: Who) -> BulkReport:
        """Soft-delete every record, all or nothing, with a report per record."""
        _check_bulk_size(ids)

        def step(
            uow: UnitOfWork, definition: FormDefinition, store: FormRecordStore, rid: int
        ) -> int:
            _refuse_append_only(definition)
            return self._delete_one(uow, definition, store, rid, version=None, actor=actor)

        return self._bulk(app, form, ids, step, who=actor, action="delete")

    def _bulk(
        self,
        app: str,
        form: str,
        ids: Sequence[int],
        step: Callable[[UnitOfWork, FormDefinition, FormRecordStore, int], int],
        *,
        who: Who,
        action: str,
        keys: tuple[str, ...] = (),
    ) -> BulkReport:
        """Each id in a savepoint; ids out of the actor's scope are not found (nothing applied)."""
        items: list[BulkItem] = []
        with self._unit(app, form) as (uow, definition, store):
            access = form_access(uow=uow, who=who, app=app, form=form)
            require(access, action)
            require_writable(access, _field_keys(store.layout, keys))
            reached = ids_in_scope(
                uow.conn, access, store.layout.main, ids, who=who, now=self._clock(), action=action
            )
            for record_id in dict.fromkeys(ids):
                if record_id not in reached:
                    items.append(_out_of_reach(record_id))
                    continue
                savepoint = uow.conn.begin_nested()
                try:
                    version = step(uow, definition, store, record_id)
                except (SubmissionError, ConflictError, NotFoundError) as err:
                    savepoint.rollback()
                    items.append(_failed(record_id, err))
                    continue
                savepoint.commit()
                items.append(BulkItem(id=record_id, ok=True, version=version))
            applied = all(item.ok for item in items)
            if applied:
                uow.commit()
        return BulkReport(applied=applied, items=tuple(items))


# --- values and changes -----------------------------------------------------------------------


def record_to_json(
    definition: FormDefinition, record: StoredRecord, *, access: FormAccess | None = None
) -> dict[str, Any]:
    """A record as JSON: system fields under their own names, then every field's value.

    With `access`, the fields hidden from that reader are left out.
    """
    out: dict[str, Any] = {}
    for name in SYSTEM_FIELDS:
        value = getattr(record, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    for key, value in record.values.items():
        if access is None or not access.is_hidden(key):
            out[key] = field_json(definition, key, value)
    return out


def field_json(definition: FormDefinition, key: str, value: Any) -> Any:
    """One field's value as JSON (subform rows cell by cell)."""
    from engine.forms.values import to_json

    if value is None:
        return None
    spec = definition.compiled.fields.get(key)
    if spec is None:
        return value
    children = definition.compiled.subform_fields.get(key)
    if children is not None:
        return [
            {
                k: (None if v is None else to_json(children[k], v)) if k in children else v
                for k, v in row.items()
            }
            for row in value
        ]
    return to_json(spec, value)


def related_names(definition: FormDefinition, layout: RecordLayout) -> frozenset[str]:
    """Names the form's expressions read from related records: `relation.field` and lookups."""
    from engine.expr import references

    names: set[str] = set()
    for expression in definition.compiled.expressions.values():
        names |= references(expression)
    found: set[str] = set()
    for name in names:
        slot = layout.slot(name.split(".", 1)[0])
        if slot is None:
            continue
        if slot.kind == COMPUTED and str(slot.spec.type) == "lookup" and "." not in name:
            found.add(name)
        elif slot.kind == STORED and slot.target is not None and "." in name:
            found.add(name)
    return frozenset(found)


def _writable(layout: RecordLayout, clean: Mapping[str, Any]) -> dict[str, Any]:
    kinds = {slot.key: slot.kind for slot in layout.slots}
    return {k: v for k, v in clean.items() if kinds.get(k) in _WRITABLE}


def _is_autonumber(layout: RecordLayout, key: str) -> bool:
    slot = layout.slot(key)
    return slot is not None and str(slot.spec.type) == "autonumber"


def _comparable(layout: RecordLayout, key: str, value: Any) -> Any:
    """A value reduced to what is stored, so re-reads compare equal to clean input."""
    slot = layout.slot(key)
    if slot is None or slot.kind != SUBFORM or value is None:
        return value
    keys = [row.key for row in slot.rows if row.kind in _WRITABLE]
    return [{k: row.get(k) for k in keys} for row in value]


def _changes(
    definition: FormDefinition,
    layout: RecordLayout,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    keys: Mapping[str, Any] | None = None,
) -> dict[str, list[Any]]:
    """`{field: [old, new]}` in JSON for every stored field that differs."""
    out: dict[str, list[Any]] = {}
    for slot in layout.slots:
        if slot.kind not in _WRITABLE or (keys is not None and slot.key not in keys):
            continue
        old = _comparable(layout, slot.key, before.get(slot.key))
        new = _comparable(layout, slot.key, after.get(slot.key))
        if old != new and not (old in (None, []) and new in (None, [])):
            out[slot.key] = [
                field_json(definition, slot.key, old),
                field_json(definition, slot.key, new),
            ]
    return out


def _digest(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse_append_only(definition: FormDefinition) -> None:
    if definition.compiled.spec.append_only:
        raise ConflictError(
            f"form {definition.key!r} is append-only: records cannot change", code=APPEND_ONLY
        )


def _check_bulk_size(ids: Sequence[int]) -> None:
    if not ids or len(ids) > MAX_BULK:
        message = f"give 1 to {MAX_BULK} record ids"
        raise SubmissionError([FieldError("ids", BULK_TOO_LARGE, message)])


def _field_keys(layout: RecordLayout, keys: Iterable[str]) -> list[str]:
    """The keys that name a field of the form (system keys such as `version` are not writes)."""
    return [key for key in keys if layout.slot(key) is not None]


def _out_of_reach(record_id: int) -> BulkItem:
    return BulkItem(
        id=record_id,
        ok=False,
        code="record.not-found",
        message=f"record {record_id} not found",
        reason="not-found",
    )


def _failed(record_id: int, err: EngineError) -> BulkItem:
    errors = err.errors if isinstance(err, SubmissionError) else ()
    reason = "invalid" if errors else "not-found" if isinstance(err, NotFoundError) else "conflict"
    return BulkItem(
        id=record_id, ok=False, code=err.code, message=err.message, errors=errors, reason=reason
    )


__all__ = [
    "APPEND_ONLY",
    "BAD_COMMENT",
    "BULK_TOO_LARGE",
    "IDEMPOTENCY_MISMATCH",
    "BulkItem",
    "BulkReport",
    "CommentRecord",
    "HistoryEntry",
    "RecordConflict",
    "RecordResult",
    "RecordService",
    "field_json",
    "record_to_json",
]

"""The records service: create, read, update, delete, restore, history, comments and bulk edits.

Each call is one unit of work: it loads the compiled form from the registry, checks the actor's
access, writes through a `RecordWriter` (validation, storage, history, change events) and
commits once. Engine code that holds its own unit of work writes through `writer()`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    SubmissionError,
)
from engine.forms.bulk import (
    BULK_TOO_LARGE,
    MAX_BULK,
    BulkItem,
    BulkReport,
    check_bulk_size,
    failed,
    out_of_reach,
)
from engine.forms.events import ChangeListener, ChangeSource
from engine.forms.record_access import (
    Who,
    check_lookups,
    form_access,
    ids_in_scope,
    read_scope,
    user_id_of,
)
from engine.forms.record_json import field_json, field_keys, record_to_json
from engine.forms.record_writer import (
    APPEND_ONLY,
    CHANGE_LOOP,
    ChangeLoopError,
    FormKit,
    RecordWriter,
    refuse_append_only,
)
from engine.identity.permissions import FormAccess, require, require_writable
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.conflicts import UNIQUE, ConstraintConflict
from engine.storage.form_records import (
    FormRecordStore,
    RecordConflict,
    RecordLayout,
    StoredRecord,
)
from engine.storage.record_meta import CommentRecord, HistoryEntry, RecordMetaStore
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

IDEMPOTENCY_MISMATCH = "record.idempotency-mismatch"
BAD_COMMENT = "record.bad-comment"
MAX_COMMENT = 20_000

_Step = Callable[[RecordWriter, FormDefinition, FormRecordStore, int], StoredRecord]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A record with the definition it was read with (to serialise it)."""

    definition: FormDefinition
    record: StoredRecord
    replayed: bool = False  # an idempotent create that returned the earlier record
    access: FormAccess | None = None  # the reader's access: hidden fields are left out

    def to_json(self) -> dict[str, Any]:
        return record_to_json(self.definition, self.record, access=self.access)


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
        # Told of every write before it commits (events.py); the app may add to it later.
        self._kit = FormKit(registry=registry, clock=clock, listeners=listeners)

    def writer(
        self, uow: UnitOfWork, *, source: ChangeSource = "flow", depth: int = 1
    ) -> RecordWriter:
        """Writes in the caller's unit of work (flows, SLA): same validation, history and
        events as the API; the caller commits. `depth` is the triggering change's depth + 1."""
        return RecordWriter(uow, self._kit, source=source, depth=depth)

    # --- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _unit(
        self, app: str, form: str
    ) -> Iterator[tuple[RecordWriter, FormDefinition, FormRecordStore]]:
        with UnitOfWork(self._db, clock=self._clock) as uow:
            definition, store = self._kit.open(uow, app, form)
            yield RecordWriter(uow, self._kit, source="api", depth=0), definition, store

    def layout(self, definition: FormDefinition) -> RecordLayout:
        """The storage layout of a compiled form, built once per definition."""
        return self._kit.layout(definition)

    def definition(self, *, app: str, form: str) -> FormDefinition:
        """The compiled current definition of a form (NotFoundError if there is none)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            return self._registry.form(uow, app=app, key=form)

    def access(self, *, app: str, form: str, actor: Who) -> FormAccess:
        """The actor's access to the form (for routes that describe it, like its schema)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            self._registry.form(uow, app=app, key=form)
            return form_access(uow=uow, who=actor, app=app, form=form)

    def _checked(
        self,
        uow: UnitOfWork,
        store: FormRecordStore,
        record: StoredRecord,
        access: FormAccess,
        actor: Who,
    ) -> tuple[list[StoredRecord], FormAccess]:
        """The record with lookups of related records outside the actor's scope nulled."""
        return check_lookups(uow.conn, access, store.layout, [record], who=actor, now=self._clock())

    def _meta(self, uow: UnitOfWork, app: str, form: str) -> RecordMetaStore:
        return RecordMetaStore(uow.conn, app=app, form=form, clock=self._clock)

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
        with self._unit(app, form) as (writer, definition, store):
            uow = writer.uow
            access = form_access(uow=uow, who=actor, app=app, form=form)
            require(access, "create")
            require_writable(access, field_keys(store.layout, data))
            meta = self._meta(uow, app, form)
            save_key: Callable[[int], None] | None = None
            if key is not None:
                seen = meta.find_idempotency(key=key)
                if seen is not None:
                    if seen.request_digest != digest:
                        message = "this idempotency key was used with a different request"
                        raise ConflictError(message, code=IDEMPOTENCY_MISMATCH)
                    record = store.get(record_id=seen.record_id, include_deleted=True)
                    [record], access = self._checked(uow, store, record, access, actor)
                    return RecordResult(definition, record, replayed=True, access=access)
                save_key = _key_saver(meta, key, digest)
            record = writer.insert(definition, store, data, actor=actor, after_insert=save_key)
            [record], access = self._checked(uow, store, record, access, actor)
            uow.commit()
        return RecordResult(definition, record, access=access)

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
        with self._unit(app, form) as (writer, definition, store):
            uow = writer.uow
            access = form_access(uow=uow, who=actor, app=app, form=form)
            require(access, "read")
            where = read_scope(uow.conn, access, store.layout.main, who=actor, now=self._clock())
            record = store.get(record_id=record_id, include_deleted=include_deleted, where=where)
            [record], access = self._checked(uow, store, record, access, actor)
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
        with self._unit(app, form) as (writer, definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="update")
            require_writable(access, field_keys(store.layout, data))
            refuse_append_only(definition)
            record = writer.change(definition, store, record_id, data, version=version, actor=actor)
            [record], access = self._checked(writer.uow, store, record, access, actor)
            writer.uow.commit()
        return RecordResult(definition, record, access=access)

    def delete(
        self, *, app: str, form: str, record_id: int, actor: Who, version: int | None = None
    ) -> RecordResult:
        """Soft-delete a record (refused while records that `refuse` refer to it)."""
        with self._unit(app, form) as (writer, definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="delete")
            refuse_append_only(definition)
            record = writer.remove(definition, store, record_id, version=version, actor=actor)
            [record], access = self._checked(writer.uow, store, record, access, actor)
            writer.uow.commit()
        return RecordResult(definition, record, access=access)

    def restore(self, *, app: str, form: str, record_id: int, actor: Who) -> RecordResult:
        """Bring back a soft-deleted record (needs `delete` on it, like deleting)."""
        with self._unit(app, form) as (writer, definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="delete", include_deleted=True)
            record = writer.bring_back(definition, store, record_id, actor=actor)
            [record], access = self._checked(writer.uow, store, record, access, actor)
            writer.uow.commit()
        return RecordResult(definition, record, access=access)

    # --- history and comments -----------------------------------------------------------------

    def history(
        self, *, app: str, form: str, record_id: int, actor: Who = None
    ) -> list[HistoryEntry]:
        """The record's writes, oldest first, without changes of fields the actor cannot see."""
        with self._unit(app, form) as (writer, _definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="read", include_deleted=True)
            entries = self._meta(writer.uow, app, form).list_history(record_id=record_id)
        return [replace(entry, changes=access.strip(entry.changes)) for entry in entries]

    def add_comment(
        self, *, app: str, form: str, record_id: int, body: str, actor: Who
    ) -> CommentRecord:
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_COMMENT:
            message = f"a comment is 1 to {MAX_COMMENT} characters of text"
            raise SubmissionError([FieldError("body", BAD_COMMENT, message)])
        with self._unit(app, form) as (writer, _definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="read")
            comment = self._meta(writer.uow, app, form).add_comment(
                record_id=record_id, body=body, actor=user_id_of(actor)
            )
            writer.uow.commit()
        return comment

    def list_comments(
        self, *, app: str, form: str, record_id: int, actor: Who = None
    ) -> list[CommentRecord]:
        with self._unit(app, form) as (writer, _definition, store):
            access = form_access(uow=writer.uow, who=actor, app=app, form=form)
            writer.check(store, access, record_id, who=actor, action="read", include_deleted=True)
            return self._meta(writer.uow, app, form).list_comments(record_id=record_id)

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
        check_bulk_size(ids)
        expected = versions or {}

        def step(
            writer: RecordWriter, definition: FormDefinition, store: FormRecordStore, rid: int
        ) -> StoredRecord:
            refuse_append_only(definition)
            return writer.change(
                definition, store, rid, data, version=expected.get(rid), actor=actor
            )

        return self._bulk(app, form, ids, step, who=actor, action="update", keys=tuple(data))

    def bulk_delete(self, *, app: str, form: str, ids: Sequence[int], actor: Who) -> BulkReport:
        """Soft-delete every record, all or nothing, with a report per record."""
        check_bulk_size(ids)

        def step(
            writer: RecordWriter, definition: FormDefinition, store: FormRecordStore, rid: int
        ) -> StoredRecord:
            refuse_append_only(definition)
            return writer.remove(definition, store, rid, version=None, actor=actor)

        return self._bulk(app, form, ids, step, who=actor, action="delete")

    def _bulk(
        self,
        app: str,
        form: str,
        ids: Sequence[int],
        step: _Step,
        *,
        who: Who,
        action: str,
        keys: tuple[str, ...] = (),
    ) -> BulkReport:
        """Each id in a savepoint; ids out of the actor's scope are not found (nothing applied)."""
        items: list[BulkItem] = []
        with self._unit(app, form) as (writer, definition, store):
            writer.source = "bulk"
            uow = writer.uow
            access = form_access(uow=uow, who=who, app=app, form=form)
            require(access, action)
            require_writable(access, field_keys(store.layout, keys))
            reached = ids_in_scope(
                uow.conn, access, store.layout.main, ids, who=who, now=self._clock(), action=action
            )
            for record_id in dict.fromkeys(ids):
                if record_id not in reached:
                    items.append(out_of_reach(record_id))
                    continue
                savepoint = uow.conn.begin_nested()
                try:
                    record = step(writer, definition, store, record_id)
                except (SubmissionError, ConflictError, NotFoundError) as err:
                    savepoint.rollback()
                    items.append(failed(record_id, err))
                    continue
                savepoint.commit()
                items.append(BulkItem(id=record_id, ok=True, version=record.version))
            applied = all(item.ok for item in items)
            if applied:
                uow.commit()
        return BulkReport(applied=applied, items=tuple(items))


def _key_saver(meta: RecordMetaStore, key: str, digest: str) -> Callable[[int], None]:
    def save(record_id: int) -> None:
        meta.save_idempotency(key=key, record_id=record_id, request_digest=digest)

    return save


def _digest(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = [
    "APPEND_ONLY",
    "BAD_COMMENT",
    "BULK_TOO_LARGE",
    "CHANGE_LOOP",
    "IDEMPOTENCY_MISMATCH",
    "MAX_BULK",
    "BulkItem",
    "BulkReport",
    "ChangeLoopError",
    "CommentRecord",
    "HistoryEntry",
    "RecordConflict",
    "RecordResult",
    "RecordService",
    "RecordWriter",
    "field_json",
    "record_to_json",
]

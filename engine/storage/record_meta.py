"""What the engine keeps beside a form's records: history, comments, idempotency keys, counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import NotFoundError
from engine.storage.sqltypes import utc_now
from engine.storage.tables import (
    autonumber_counters,
    idempotency_keys,
    record_comments,
    record_history,
)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One write to a record: `changes` maps a field key to `[old, new]` (JSON values)."""

    id: int
    record_id: int
    version: int
    at: datetime
    actor_id: int | None
    action: str
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommentRecord:
    id: int
    record_id: int
    at: datetime
    actor_id: int | None
    body: str


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A create request already served: the record it made and the digest of its payload."""

    key: str
    record_id: int
    request_digest: str
    created_at: datetime


class RecordMetaStore:
    """History, comments and idempotency keys of the records of one form, and its counters."""

    def __init__(self, conn: sa.Connection, *, app: str, form: str, clock: Clock = utc_now):
        self._conn = conn
        self._app = app
        self._form = form
        self._clock = clock

    def _scope(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.app == self._app, table.c.form == self._form)

    # --- history ------------------------------------------------------------------------------

    def add_history(
        self,
        *,
        record_id: int,
        version: int,
        action: str,
        changes: dict[str, Any],
        actor: int | None,
    ) -> None:
        row = {"app": self._app, "form": self._form, "record_id": record_id, "version": version}
        row.update(at=self._clock(), actor_id=actor, action=action, changes=changes)
        self._conn.execute(sa.insert(record_history), row)

    def list_history(self, *, record_id: int) -> list[HistoryEntry]:
        """Every write to the record, oldest first."""
        table = record_history
        query = (
            sa.select(
                table.c.id,
                table.c.record_id,
                table.c.version,
                table.c.at,
                table.c.actor_id,
                table.c.action,
                table.c.changes,
            )
            .where(self._scope(table), table.c.record_id == record_id)
            .order_by(table.c.id)
        )
        return [HistoryEntry(**row._mapping) for row in self._conn.execute(query)]

    # --- comments -----------------------------------------------------------------------------

    def add_comment(self, *, record_id: int, body: str, actor: int | None) -> CommentRecord:
        at = self._clock()
        values = {"record_id": record_id, "at": at, "actor_id": actor, "body": body}
        result = self._conn.execute(
            sa.insert(record_comments)
            .values(app=self._app, form=self._form, **values)
            .returning(record_comments.c.id)
        )
        comment_id = int(result.scalar_one())
        return CommentRecord(id=comment_id, record_id=record_id, at=at, actor_id=actor, body=body)

    def list_comments(self, *, record_id: int) -> list[CommentRecord]:
        """The record's comments that are not deleted, oldest first."""
        table = record_comments
        query = (
            sa.select(table.c.id, table.c.record_id, table.c.at, table.c.actor_id, table.c.body)
            .where(self._scope(table), table.c.record_id == record_id, table.c.deleted_at.is_(None))
            .order_by(table.c.id)
        )
        return [CommentRecord(**row._mapping) for row in self._conn.execute(query)]

    def delete_comment(self, *, record_id: int, comment_id: int) -> None:
        table = record_comments
        result = self._conn.execute(
            sa.update(table)
            .where(
                self._scope(table),
                table.c.record_id == record_id,
                table.c.id == comment_id,
                table.c.deleted_at.is_(None),
            )
            .values(deleted_at=self._clock())
        )
        if result.rowcount == 0:
            raise NotFoundError(f"no comment {comment_id}", code="record.comment-not-found")

    # --- idempotency --------------------------------------------------------------------------

    def find_idempotency(self, *, key: str) -> IdempotencyRecord | None:
        table = idempotency_keys
        query = sa.select(
            table.c.key, table.c.record_id, table.c.request_digest, table.c.created_at
        ).where(self._scope(table), table.c.key == key)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else IdempotencyRecord(**row._mapping)

    def save_idempotency(self, *, key: str, record_id: int, request_digest: str) -> None:
        """Remember the request; a concurrent request with the same key fails on the unique key."""
        self._conn.execute(
            sa.insert(idempotency_keys).values(
                app=self._app,
                form=self._form,
                key=key,
                record_id=record_id,
                request_digest=request_digest,
                created_at=self._clock(),
            )
        )

    # --- autonumber counters ------------------------------------------------------------------

    def next_number(self, *, field: str, period: str) -> int:
        """The next value of the counter (1 for a new period).

        One upsert that bumps the counter row and returns it: on PostgreSQL the row stays locked
        until the transaction ends, so concurrent creates wait for each other and never share a
        number; SQLite serialises writers anyway.
        """
        dialect = self._conn.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = autonumber_counters
        statement = (
            insert(table)
            .values(app=self._app, form=self._form, field=field, period=period, value=1)
            .on_conflict_do_update(
                index_elements=[table.c.app, table.c.form, table.c.field, table.c.period],
                set_={"value": table.c.value + 1},
            )
            .returning(table.c.value)
        )
        return int(self._conn.execute(statement).scalar_one())


__all__ = [
    "CommentRecord",
    "HistoryEntry",
    "IdempotencyRecord",
    "RecordMetaStore",
]

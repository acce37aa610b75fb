"""Integrity on delete: what a relation's `on_delete` does when its target record is deleted.

`refuse` lists the live records that still refer to the target; `clear` empties the
referencing column (bumping the record's version and writing its history) or drops the links.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.storage._record_layout import RecordLayout, Reference
from engine.storage.record_meta import RecordMetaStore

MAX_LISTED = 100


def referencing_records(
    conn: sa.Connection, layout: RecordLayout, record_id: int
) -> list[dict[str, Any]]:
    """`{form, field, id}` of live records whose `on_delete: refuse` relation points here."""
    found: list[dict[str, Any]] = []
    for reference in layout.references:
        if reference.on_delete == "refuse":
            found += _referencing(conn, layout, reference, record_id)
    return found


def clear_references(
    conn: sa.Connection,
    layout: RecordLayout,
    record_id: int,
    *,
    actor: int | None,
    clock: Callable[[], datetime],
) -> None:
    """Apply every `on_delete: clear` relation that points at `record_id`."""
    for ref in layout.references:
        if ref.on_delete != "clear":
            continue
        table = ref.table
        match = table.c[ref.column] == record_id
        if ref.is_link:
            conn.execute(sa.delete(table).where(match))
        elif ref.parent_column is None:
            _clear_column(conn, layout, ref, record_id, actor=actor, clock=clock)
        else:
            conn.execute(sa.update(table).where(match).values({ref.column: None}))


def _referencing(
    conn: sa.Connection, layout: RecordLayout, ref: Reference, record_id: int
) -> list[dict[str, Any]]:
    owner, table = ref.owner, ref.table
    query = (
        sa.select(owner.c.id)
        .distinct()
        .where(table.c[ref.column] == record_id, owner.c.deleted_at.is_(None))
    )
    if ref.parent_column is not None:
        query = query.select_from(table.join(owner, owner.c.id == table.c[ref.parent_column]))
    if ref.form == layout.form:
        query = query.where(owner.c.id != record_id)
    ids = sorted(int(v) for v in conn.execute(query.limit(MAX_LISTED)).scalars())
    return [{"form": ref.form, "field": ref.field, "id": value} for value in ids]


def _clear_column(
    conn: sa.Connection,
    layout: RecordLayout,
    ref: Reference,
    record_id: int,
    *,
    actor: int | None,
    clock: Callable[[], datetime],
) -> None:
    """Null the referencing column of live records, bumping their version, with history."""
    table = ref.table
    statement = (
        sa.update(table)
        .where(table.c[ref.column] == record_id, table.c.deleted_at.is_(None))
        .values(
            {
                ref.column: None,
                "version": table.c.version + 1,
                "updated_at": clock(),
                "updated_by": actor,
            }
        )
        .returning(table.c.id, table.c.version)
    )
    meta = RecordMetaStore(conn, app=layout.app, form=ref.form, clock=clock)
    for changed_id, version in conn.execute(statement).all():
        meta.add_history(
            record_id=int(changed_id),
            version=int(version),
            action="update",
            changes={ref.field: [record_id, None]},
            actor=actor,
        )


__all__ = ["clear_references", "referencing_records"]

"""Many new records at once: one statement per table instead of one per row (imports).

Autonumbers come from one counter bump of +N per field, the main rows from one multi-row
`INSERT … RETURNING id` (ids in input order), subform rows and link rows from one statement per
table, history entries from one statement. The caller's savepoint makes the batch all or none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.storage._record_layout import LINKS, PARTS, STORED, SUBFORM, RecordLayout, Slot
from engine.storage._record_values import autonumber_period, format_autonumber, to_columns
from engine.storage.tables import autonumber_counters, record_history

Execute = Callable[[sa.Executable, list[dict[str, Any]]], sa.CursorResult[Any]]


def reserve_numbers(
    conn: sa.Connection, *, app: str, form: str, field: str, period: str, count: int
) -> int:
    """The first of `count` consecutive counter values, taken with one upsert (see
    `RecordMetaStore.next_number`: the counter row stays locked until the transaction ends)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    table = autonumber_counters
    statement = (
        insert(table)
        .values(app=app, form=form, field=field, period=period, value=count)
        .on_conflict_do_update(
            index_elements=[table.c.app, table.c.form, table.c.field, table.c.period],
            set_={"value": table.c.value + count},
        )
        .returning(table.c.value)
    )
    last = int(conn.execute(statement).scalar_one())
    return last - count + 1


def autonumber_block(
    conn: sa.Connection, layout: RecordLayout, now: datetime, count: int
) -> dict[str, list[str]]:
    """`count` autonumber texts per autonumber field, in allocation order."""
    out: dict[str, list[str]] = {}
    for slot in layout.slots:
        if slot.kind == STORED and str(slot.spec.type) == "autonumber":
            period = autonumber_period(str(getattr(slot.spec, "reset", "never")), now)
            first = reserve_numbers(
                conn, app=layout.app, form=layout.form, field=slot.key, period=period, count=count
            )
            pattern = str(slot.spec.pattern)
            out[slot.key] = [format_autonumber(pattern, now, first + i) for i in range(count)]
    return out


def insert_ids(
    conn: sa.Connection, execute: Execute, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert `rows` and return their ids in order: one statement per distinct key set.

    PostgreSQL: the ids are taken from the table's sequence first and the rows go through a
    plain executemany (psycopg's pipeline), because a multi-row INSERT of thousands of
    parameters costs more to convert on the client than it saves. SQLite: one multi-row
    `INSERT … RETURNING id`.
    """
    if conn.dialect.name == "postgresql":
        ids = _reserve_ids(conn, table, len(rows))
        _execute_in_groups(execute, table, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return ids
    groups: dict[tuple[str, ...], list[int]] = {}
    for position, row in enumerate(rows):
        groups.setdefault(tuple(row), []).append(position)
    ids = [0] * len(rows)
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    for positions in groups.values():
        result = execute(statement, [rows[p] for p in positions])
        for position, record_id in zip(positions, result.scalars(), strict=True):
            ids[position] = int(record_id)
    return ids


def _reserve_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    query = sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
    return sorted(int(i) for i in conn.execute(query, {"t": table.name, "n": count}).scalars())


def insert_children(
    conn: sa.Connection,
    execute: Execute,
    layout: RecordLayout,
    ids: Sequence[int],
    records: Sequence[Mapping[str, Any]],
) -> None:
    """The subform rows and link rows of freshly inserted records, a statement per table."""
    for slot in layout.slots:
        if slot.table is None:
            continue
        if slot.kind == SUBFORM:
            _subform_rows(conn, execute, slot, ids, [r.get(slot.key) or [] for r in records])
        elif slot.kind == LINKS:
            _links(execute, slot.table, ids, [r.get(slot.key) or [] for r in records])


def _subform_rows(
    conn: sa.Connection,
    execute: Execute,
    slot: Slot,
    parent_ids: Sequence[int],
    row_lists: Sequence[Sequence[Mapping[str, Any]]],
) -> None:
    table = slot.table
    assert table is not None
    columns: list[dict[str, Any]] = []
    sources: list[Mapping[str, Any]] = []
    for parent_id, rows in zip(parent_ids, row_lists, strict=True):
        for position, row in enumerate(rows):
            out: dict[str, Any] = {"parent_id": parent_id, "position": position}
            for child in slot.rows:
                if child.key in row and child.kind in (STORED, PARTS):
                    out.update(to_columns(child, row[child.key]))
            columns.append(out)
            sources.append(row)
    if not columns:
        return
    linked = [c for c in slot.rows if c.kind == LINKS and c.table is not None]
    if not linked:
        _execute_in_groups(execute, table, columns)
        return
    row_ids = insert_ids(conn, execute, table, columns)
    for child in linked:
        assert child.table is not None
        _links(execute, child.table, row_ids, [row.get(child.key) or [] for row in sources])


def _links(
    execute: Execute, table: sa.Table, source_ids: Sequence[int], targets: Sequence[Any]
) -> None:
    rows = [
        {"source_id": source_id, "target_id": target, "position": position}
        for source_id, ids in zip(source_ids, targets, strict=True)
        for position, target in enumerate(dict.fromkeys(ids))
    ]
    if rows:
        execute(sa.insert(table), rows)


def _execute_in_groups(execute: Execute, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for same in groups.values():
        execute(sa.insert(table), same)


def add_history_many(
    conn: sa.Connection,
    *,
    app: str,
    form: str,
    entries: Sequence[tuple[int, dict[str, Any]]],
    actor: int | None,
    at: datetime,
) -> None:
    """One `create` history entry (version 1) per `(record_id, changes)`, in one statement."""
    rows = [
        {
            "app": app,
            "form": form,
            "record_id": record_id,
            "version": 1,
            "at": at,
            "actor_id": actor,
            "action": "create",
            "changes": changes,
        }
        for record_id, changes in entries
    ]
    if rows:
        conn.execute(sa.insert(record_history), rows)


__all__ = [
    "add_history_many",
    "autonumber_block",
    "insert_children",
    "insert_ids",
    "reserve_numbers",
]

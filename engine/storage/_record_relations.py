"""Relation targets of a write: live records of the target form that pass the relation's filter.

All relation values of a record (its own, its multiple relations', its subform rows') are
checked in one query. A relation `filter` is compiled to SQL over the target's columns, with
`$record.<field>` bound to the value being written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import FieldError, SubmissionError
from engine.storage._record_layout import LINKS, STORED, SUBFORM, RecordLayout, Slot
from engine.storage._record_sql import target_tables
from engine.storage.form_tables import SYSTEM_COLUMNS
from engine.storage.names import form_table_name

MISSING_RELATION = "record.missing-relation"
RELATION_FILTERED = "record.relation-filtered"
RECORD_PREFIX = "$record."


@dataclass(frozen=True, slots=True)
class _Group:
    """Ids checked together: same target form, and the same filter when there is one."""

    target: str
    filtered: str | None  # dotted key of the relation field whose filter applies


def check_relations(
    conn: sa.Connection,
    layout: RecordLayout,
    values: Mapping[str, Any],
    *,
    record: Mapping[str, Any],
    now: datetime,
) -> None:
    """Raise one `SubmissionError` listing every relation value that is missing or filtered out.

    `values` are the fields being written; `record` the whole record after the write (what
    `$record.<field>` reads). A filtered relation is checked again when a field its filter
    reads from the record changes, even if the relation itself does not.
    """
    wanted: dict[_Group, list[tuple[str, int]]] = {}
    for slot in layout.slots:
        if slot.key in values:
            _collect(layout, slot, values[slot.key], slot.key, scope="", wanted=wanted)
        elif _filter_reads_changed(layout, slot, values):
            _collect(layout, slot, record.get(slot.key), slot.key, scope="", wanted=wanted)
    if not wanted:
        return
    errors = _problems(wanted, _query(conn, layout, wanted, record, now))
    if errors:
        raise SubmissionError(errors)


def relation_errors(
    conn: sa.Connection,
    layout: RecordLayout,
    records: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
) -> dict[int, SubmissionError]:
    """`check_relations` of many new records: the errors by position, not raised.

    Ids are checked a bucket at a time: every unfiltered relation to one target form is one
    bucket; a relation with a filter reading `$record.<field>` has a bucket per distinct value
    of those fields (records of one customer share one query). One query per bucket.
    """
    per_record: list[tuple[dict[_Group, list[tuple[str, int]]], list[_Bucket]]] = []
    buckets: dict[_Bucket, tuple[set[int], Mapping[str, Any]]] = {}
    for values in records:
        wanted: dict[_Group, list[tuple[str, int]]] = {}
        for slot in layout.slots:
            if slot.key in values:
                _collect(layout, slot, values[slot.key], slot.key, scope="", wanted=wanted)
        mine: list[_Bucket] = []
        for group, pairs in wanted.items():
            bucket = (group, _read_values(layout, group, values))
            ids, _example = buckets.setdefault(bucket, (set(), values))
            ids.update(record_id for _, record_id in pairs)
            mine.append(bucket)
        per_record.append((wanted, mine))
    unfiltered = {b[0]: [("", i) for i in ids] for b, (ids, _v) in buckets.items() if not b[1]}
    found: dict[_Bucket, dict[tuple[_Group, int], bool]] = {}
    if unfiltered:  # one UNION ALL over the target forms
        shared = _query(conn, layout, unfiltered, {}, now)
        found.update({(group, ()): shared for group in unfiltered})
    for bucket, (ids, example) in buckets.items():
        if bucket[1]:
            group = bucket[0]
            found[bucket] = _query(conn, layout, {group: [("", i) for i in ids]}, example, now)
    out: dict[int, SubmissionError] = {}
    for position, (wanted, mine) in enumerate(per_record):
        merged: dict[tuple[_Group, int], bool] = {}
        for bucket in mine:
            merged.update(found[bucket])
        errors = _problems(wanted, merged)
        if errors:
            out[position] = SubmissionError(errors)
    return out


_Bucket = tuple[_Group, tuple[str, ...]]


def _read_values(layout: RecordLayout, group: _Group, values: Mapping[str, Any]) -> tuple[str, ...]:
    """The `$record.<field>` values a group's filter reads, as a key (empty: no filter)."""
    if group.filtered is None:
        return ()
    return ("filtered",) + tuple(repr(values.get(name)) for name in _record_reads(layout, group))


def _record_reads(layout: RecordLayout, group: _Group) -> list[str]:
    """The fields of the written record a group's filter reads (`$record.customer` → customer)."""
    from engine.expr import references

    expression = None if group.filtered is None else _filter(layout, group.filtered)
    if expression is None:
        return []
    names = references(expression)
    reads = {n.removeprefix(RECORD_PREFIX).split(".")[0] for n in names if n.startswith("$record.")}
    return sorted(reads)


def _problems(
    wanted: Mapping[_Group, list[tuple[str, int]]], found: Mapping[tuple[_Group, int], bool]
) -> list[FieldError]:
    errors: list[FieldError] = []
    for group, pairs in wanted.items():
        for loc, record_id in pairs:
            allowed = found.get((group, record_id))
            if allowed is None:
                message = f"no live {group.target} record {record_id}"
                errors.append(FieldError(loc, MISSING_RELATION, message))
            elif not allowed:
                message = f"{group.target} record {record_id} does not match the relation's filter"
                errors.append(FieldError(loc, RELATION_FILTERED, message))
    return errors


def _filter_reads_changed(layout: RecordLayout, slot: Slot, values: Mapping[str, Any]) -> bool:
    expression = _filter(layout, slot.key)
    if expression is None or slot.kind not in (STORED, LINKS):
        return False
    from engine.expr import references

    reads = {name.removeprefix(RECORD_PREFIX) for name in references(expression)}
    return any(name in values for name in reads if name in layout.by_key)


def _filter(layout: RecordLayout, dotted: str) -> Any | None:
    path = layout.paths.get(dotted)
    return None if path is None else layout.expressions.get(f"{path}/filter")


def _collect(
    layout: RecordLayout,
    slot: Slot,
    value: Any,
    loc: str,
    *,
    scope: str,
    wanted: dict[_Group, list[tuple[str, int]]],
) -> None:
    if value is None:
        return
    dotted = scope + slot.key
    if slot.kind in (STORED, LINKS) and slot.target is not None:
        group = _Group(slot.target, dotted if _filter(layout, dotted) is not None else None)
        if slot.kind == STORED:
            wanted.setdefault(group, []).append((loc, int(value)))
        else:
            wanted.setdefault(group, []).extend(
                (f"{loc}/{index}", int(item)) for index, item in enumerate(value)
            )
    elif slot.kind == SUBFORM:
        for index, row in enumerate(value):
            for child in slot.rows:
                if child.key in row:
                    where = f"{loc}/{index}/{child.key}"
                    _collect(
                        layout, child, row[child.key], where, scope=f"{slot.key}.", wanted=wanted
                    )


def _query(
    conn: sa.Connection,
    layout: RecordLayout,
    wanted: Mapping[_Group, list[tuple[str, int]]],
    record: Mapping[str, Any],
    now: datetime,
) -> dict[tuple[_Group, int], bool]:
    """(group, id) → passes the filter, for every wanted id that is a live record."""
    queries = []
    groups = list(wanted)
    for position, group in enumerate(groups):
        main = _target_table(layout, group.target)
        condition = _condition(conn, layout, group, main, record=record, now=now)
        allowed = sa.literal(1) if condition is None else sa.case((condition, 1), else_=0)
        ids = sorted({record_id for _, record_id in wanted[group]})
        queries.append(
            sa.select(
                sa.literal(position).label("g"), main.c.id.label("id"), allowed.label("ok")
            ).where(main.c.id.in_(ids), main.c.deleted_at.is_(None))
        )
    query = queries[0] if len(queries) == 1 else sa.union_all(*queries)
    return {(groups[int(g)], int(i)): bool(ok) for g, i, ok in conn.execute(query)}


def _target_table(layout: RecordLayout, target: str) -> Any:
    tables = target_tables(layout, target)
    if tables is not None:
        return tables.main
    name = form_table_name(layout.app, target)
    return sa.table(name, sa.column("id"), sa.column("deleted_at"))


def _condition(
    conn: sa.Connection,
    layout: RecordLayout,
    group: _Group,
    main: Any,
    *,
    record: Mapping[str, Any],
    now: datetime,
) -> sa.ColumnElement[bool] | None:
    if group.filtered is None:
        return None
    tables = target_tables(layout, group.target)
    expression = _filter(layout, group.filtered)
    if tables is None or expression is None:
        return None
    from engine.expr import ExpressionError, compile_sql

    names: dict[str, sa.ColumnElement[Any]] = {
        name: main.c[name] for name in SYSTEM_COLUMNS if name in main.c
    }
    for key, columns in tables.field_columns.items():
        if "." not in key and len(columns) == 1 and columns[0] == key:
            names[key] = main.c[key]
    from engine.expr import references

    read = references(expression)
    for slot in layout.slots:
        if slot.kind == STORED and RECORD_PREFIX + slot.key in read:
            column = layout.main.c[slot.columns[0]]
            names[RECORD_PREFIX + slot.key] = sa.literal(record.get(slot.key), column.type)
    try:
        return compile_sql(expression, names, dialect=conn.dialect.name, now=now)
    except ExpressionError:
        return None  # checked at publish; a filter this cannot compile is not enforced here


__all__ = ["MISSING_RELATION", "RELATION_FILTERED", "check_relations", "relation_errors"]

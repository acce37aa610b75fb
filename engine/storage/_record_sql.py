"""Lookups and rollups as correlated subqueries, built from the definition at read time.

They are never stored, so they are right after every change to the related records. A rollup
filter is the definition's expression compiled by `engine.expr.compile_sql` (bound parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.storage._record_layout import BACKREF, LINKS, STORED, SUBFORM, RecordLayout, Slot
from engine.storage.form_tables import SYSTEM_COLUMNS, FormTables

Computed = sa.ColumnElement[Any] | dict[str, sa.ColumnElement[Any]]


def computed_columns(
    layout: RecordLayout,
    slots: tuple[Slot, ...],
    table: sa.Table,
    *,
    scope: str,
    dialect: str,
    now: datetime,
) -> dict[str, Computed]:
    """Lookup and rollup field key → the SQL computing it for a row of `table`."""
    by_key = {slot.key: slot for slot in slots}
    out: dict[str, Computed] = {}
    for slot in slots:
        kind = str(slot.spec.type)
        if kind == "lookup":
            out[slot.key] = _lookup(layout, slot.spec, by_key, table)
        elif kind == "rollup":
            out[slot.key] = _rollup(
                layout, slot, by_key, table, scope=scope, dialect=dialect, now=now
            )
    return out


def target_tables(layout: RecordLayout, target: str | None) -> FormTables | None:
    """The tables of a relation's target form, when it belongs to this app."""
    if target is None:
        return None
    if "." in target:
        app, key = target.split(".", 1)
        if app != layout.app:
            return None
        target = key
    return layout.tables.get(target)


def _null() -> sa.ColumnElement[Any]:
    return sa.null()


def _lookup(
    layout: RecordLayout, spec: Any, by_key: Mapping[str, Slot], table: sa.Table
) -> Computed:
    relation = by_key.get(str(spec.relation))
    target = target_tables(layout, relation.target if relation else None)
    if relation is None or relation.kind != STORED or target is None:
        return _null()
    main = target.main
    columns = target.field_columns.get(str(spec.field), ())
    if not columns and str(spec.field) in SYSTEM_COLUMNS:
        columns = (str(spec.field),)
    where = sa.and_(main.c.id == table.c[relation.key], main.c.deleted_at.is_(None))

    def pick(column: str) -> sa.ColumnElement[Any]:
        return sa.select(main.c[column]).where(where).scalar_subquery()

    if len(columns) == 1 and columns[0] == str(spec.field):
        return pick(columns[0])
    if not columns:
        return _null()
    return {column.split("__", 1)[1]: pick(column) for column in columns}


def _rollup(
    layout: RecordLayout,
    slot: Slot,
    by_key: Mapping[str, Slot],
    table: sa.Table,
    *,
    scope: str,
    dialect: str,
    now: datetime,
) -> Computed:
    spec = slot.spec
    source = _rollup_source(layout, by_key.get(str(spec.relation)), table, scope)
    if source is None:
        return _null()
    rows, from_, where, field_columns = source
    conditions = [where]
    filter_expr = layout.expressions.get(f"{layout.paths.get(scope + slot.key, '')}/filter")
    if spec.filter is not None and filter_expr is not None:
        from engine.expr import compile_sql

        names = _filter_columns(rows, field_columns)
        conditions.append(compile_sql(filter_expr, names, dialect=dialect, now=now))
    field = str(spec.field or "")
    columns = field_columns.get(field) or ((field,) if field in SYSTEM_COLUMNS else None)
    value = _aggregate(str(spec.aggregate), rows, columns)
    if value is None:
        return _null()
    query = sa.select(value).select_from(from_).where(*conditions)
    return query.scalar_subquery()


def _aggregate(
    aggregate: str, rows: sa.Table, columns: tuple[str, ...] | None
) -> sa.ColumnElement[Any] | None:
    if aggregate == "count":
        return sa.func.count(rows.c[columns[0]] if columns else rows.c.id)
    if not columns or len(columns) != 1:
        return None
    column = rows.c[columns[0]]
    functions: dict[str, Callable[[Any], sa.ColumnElement[Any]]] = {
        "sum": sa.func.sum,
        "avg": sa.func.avg,
        "min": sa.func.min,
        "max": sa.func.max,
    }
    return functions[aggregate](column)


Source = tuple[sa.Table, sa.FromClause, sa.ColumnElement[bool], Mapping[str, tuple[str, ...]]]


def _rollup_source(
    layout: RecordLayout, relation: Slot | None, table: sa.Table, scope: str
) -> Source | None:
    """(rows aggregated, FROM, correlation, their field columns) for the rollup's relation."""
    if relation is None:
        return None
    if relation.kind == SUBFORM and relation.table is not None:
        own = layout.tables[layout.form]
        prefix = f"{scope}{relation.key}."
        columns = {
            k.removeprefix(prefix): v for k, v in own.field_columns.items() if k.startswith(prefix)
        }
        rows = relation.table
        return rows, rows, rows.c.parent_id == table.c.id, columns
    target = target_tables(layout, relation.target)
    if target is None:
        return None
    main = target.main
    live = main.c.deleted_at.is_(None)
    columns = dict(target.field_columns)
    if relation.kind == STORED:
        return main, main, sa.and_(main.c.id == table.c[relation.key], live), columns
    if relation.kind == LINKS and relation.table is not None:
        link = relation.table
        joined = link.join(main, main.c.id == link.c.target_id)
        return main, joined, sa.and_(link.c.source_id == table.c.id, live), columns
    if relation.kind == BACKREF:
        return _backref_source(target, relation, table, columns)
    return None


def _backref_source(
    target: FormTables, relation: Slot, table: sa.Table, columns: dict[str, tuple[str, ...]]
) -> Source | None:
    inverse = str(getattr(relation.spec, "inverse", "") or "")
    main = target.main
    live = main.c.deleted_at.is_(None)
    if inverse in main.c:
        return main, main, sa.and_(main.c[inverse] == table.c.id, live), columns
    link = target.children.get(inverse)
    if link is None:
        return None
    joined = link.join(main, main.c.id == link.c.source_id)
    return main, joined, sa.and_(link.c.target_id == table.c.id, live), columns


def _filter_columns(
    rows: sa.Table, field_columns: Mapping[str, tuple[str, ...]]
) -> dict[str, sa.ColumnElement[Any]]:
    # System columns first: a field never takes their names (the synchroniser reserves them).
    names: dict[str, sa.ColumnElement[Any]] = {
        name: rows.c[name] for name in SYSTEM_COLUMNS if name in rows.c
    }
    for key, columns in field_columns.items():
        if "." in key:
            continue
        if len(columns) == 1 and columns[0] == key:
            names[key] = rows.c[key]
        else:
            names.update({f"{key}.{c.split('__', 1)[1]}": rows.c[c] for c in columns})
    return names


__all__ = ["Computed", "computed_columns", "target_tables"]

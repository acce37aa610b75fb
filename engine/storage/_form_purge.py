"""Purging a retired field: dropping the columns and child tables a publish kept for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from engine.errors import DefinitionError, Problem
from engine.storage._form_schema import build_desired_schema
from engine.storage.conflicts import translating_conflicts
from engine.storage.names import child_table_name


def purge_columns(
    conn: sa.Connection,
    *,
    app: str,
    form: Any,
    field: str,
    related_forms: Sequence[Any] = (),
    dry_run: bool = False,
) -> list[str]:
    """Drop what a retired (or removed) top-level field left behind; returns one line per item.

    On SQLite a column holding a foreign key cannot be dropped without rebuilding the table
    (which would cascade into subform rows), so its values are cleared and the column stays.

    Raises:
        DefinitionError: `storage.field-not-retired` when the field is live,
            `storage.nothing-to-purge` when nothing of it is left.
    """
    desired = build_desired_schema(app, form, related_forms)
    _refuse_live_field(form, field)
    inspector = sa.inspect(conn)
    main = desired.tables[0].name
    columns = [
        c["name"]
        for c in inspector.get_columns(main)
        if c["name"] not in desired.tables[0].c
        and (c["name"] == field or c["name"].startswith(f"{field}__"))
    ]
    prefix = child_table_name(main, field)
    wanted = {table.name for table in desired.tables}
    tables = sorted(
        (t for t in inspector.get_table_names() if t == prefix or t.startswith(f"{prefix}__")),
        key=lambda name: (-len(name), name),
    )
    tables = [t for t in tables if t not in wanted]
    if not columns and not tables:
        raise DefinitionError(
            [Problem(code="storage.nothing-to-purge", path="", message=f"{field!r}: nothing left")]
        )
    references = _foreign_targets(inspector, main)
    lines = [_purge_line(conn, main, c, c in references) for c in columns]
    lines += [_purge_table_line(conn, t) for t in tables]
    if not dry_run:
        _purge(conn, main, columns, references, tables)
    return lines


def _refuse_live_field(form: Any, field: str) -> None:
    for position, spec in enumerate(getattr(form, "fields", ())):
        if str(spec.key) == field and not getattr(spec, "retired", False):
            raise DefinitionError(
                [
                    Problem(
                        code="storage.field-not-retired",
                        path=f"/fields/{position}",
                        message=f"field {field!r} is in use: retire or remove it first",
                    )
                ]
            )


def _count(conn: sa.Connection, table: str, column: str | None = None) -> int:
    work = sa.table(table, sa.column(column or "id"))
    query = sa.select(sa.func.count()).select_from(work)
    if column is not None:
        query = query.where(work.c[column].is_not(None))
    return int(conn.scalar(query) or 0)


def _purge_line(conn: sa.Connection, table: str, column: str, referencing: bool) -> str:
    values = _count(conn, table, column)
    if referencing and conn.dialect.name == "sqlite":
        return f"- column {table}.{column}: {values} values cleared (SQLite keeps the column)"
    return f"- column {table}.{column} ({values} values)"


def _purge_table_line(conn: sa.Connection, table: str) -> str:
    return f"- table {table} ({_count(conn, table)} rows)"


def _purge(
    conn: sa.Connection,
    table: str,
    columns: list[str],
    references: dict[str, str],
    tables: list[str],
) -> None:
    operations = Operations(MigrationContext.configure(conn))
    indexes = sa.inspect(conn).get_indexes(table)
    with translating_conflicts():
        for name in tables:
            operations.drop_table(name)
        for index in indexes:
            if set(index["column_names"]) & set(columns):
                operations.drop_index(str(index["name"]), table_name=table)
        for column in columns:
            if column in references and conn.dialect.name == "sqlite":
                conn.execute(sa.update(sa.table(table, sa.column(column))).values({column: None}))
            else:
                operations.drop_column(table, column)


def _foreign_targets(inspector: sa.Inspector, table: str) -> dict[str, str]:
    return {
        fk["constrained_columns"][0]: fk["referred_table"]
        for fk in inspector.get_foreign_keys(table)
        if len(fk["constrained_columns"]) == 1
    }


__all__ = ["purge_columns"]

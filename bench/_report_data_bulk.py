"""Batched writes of generated rows in the caller's transaction: COPY on PostgreSQL,
executemany on SQLite. Generators feed them a batch at a time, so loading 1,000,000 tickets'
worth of rows keeps the memory of one batch. On SQLite the driver gets the values as
SQLAlchemy would store them (its per-row type processing tripled the load time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa

BATCH = 20_000
T = TypeVar("T")


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def write_rows(conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert `rows` (keys: any of the table's columns; a missing key is NULL); returns how many."""
    count = 0
    for chunk in batched(rows):
        keys = sorted({key for row in chunk for key in row})  # COPY and executemany: one shape
        if conn.dialect.name == "postgresql":
            _copy(conn, table.name, keys, ([row.get(k) for k in keys] for row in chunk))
        else:
            conn.exec_driver_sql("PRAGMA cache_size = -1000000")  # KiB: indexes stay cached
            marks = ", ".join("?" for _ in keys)
            conn.exec_driver_sql(
                f"INSERT INTO {table.name} ({_names(keys)}) VALUES ({marks})",
                [tuple(_sqlite(row.get(k)) for k in keys) for row in chunk],
            )
        count += len(chunk)
    return count


def update_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE `table` by id from `rows` (all with the same keys, "id" among them)."""
    if not rows:
        return
    keys = [key for key in rows[0] if key != "id"]
    if conn.dialect.name != "postgresql":
        assignments = ", ".join(f'"{k}" = ?' for k in keys)
        conn.exec_driver_sql(
            f"UPDATE {table.name} SET {assignments} WHERE id = ?",
            [(*(_sqlite(row[k]) for k in keys), row["id"]) for row in rows],
        )
        return
    # one UPDATE … FROM a COPY-filled temporary table instead of a statement per row
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE bench_update ON COMMIT DROP AS SELECT {_names(['id', *keys])} "
        f"FROM {table.name} WITH NO DATA"
    )
    _copy(conn, "bench_update", ["id", *keys], ([row[k] for k in ["id", *keys]] for row in rows))
    assignments = ", ".join(f'"{k}" = u."{k}"' for k in keys)
    conn.exec_driver_sql(
        f"UPDATE {table.name} t SET {assignments} FROM bench_update u WHERE t.id = u.id"
    )
    conn.exec_driver_sql("DROP TABLE bench_update")


def _names(keys: Sequence[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _sqlite(value: Any) -> Any:
    """`value` as SQLAlchemy's SQLite types store it (DATETIME: naive text, microseconds)."""
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _copy(conn: sa.Connection, table: str, keys: Sequence[str], rows: Iterable[list[Any]]) -> None:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({_names(keys)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def next_id(conn: sa.Connection, table: sa.Table) -> int:
    """1 + the table's largest id (0 when empty): where explicit ids of new rows start."""
    found = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar()
    return int(found or 0) + 1


__all__ = ["BATCH", "batched", "next_id", "update_rows", "write_rows"]

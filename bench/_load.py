"""Bulk loading of generated rows into a form table, and the ticket list target, for benchmarks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.forms.compiler import compile_form
from engine.registry import DefinitionRegistry
from engine.storage import UnitOfWork
from engine.storage.form_queries import QueryTarget, query_target


def copy_rows(
    engine: sa.Engine,
    table: str,
    columns: Sequence[str],
    rows: Iterator[list[Any]],
    *,
    skip_triggers: bool = False,
) -> None:
    """PostgreSQL COPY of `rows`; `skip_triggers` also skips foreign-key checks (valid data)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if skip_triggers:
            cursor.execute("SET session_replication_role = replica")
        names = ", ".join(columns)
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def insert_rows(
    engine: sa.Engine, table: str, columns: Sequence[str], rows: Iterator[list[Any]]
) -> None:
    """executemany of `rows` in batches of 20,000, in one transaction."""
    target = sa.Table(table, sa.MetaData(), autoload_with=engine)
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) == 20_000:
                conn.execute(target.insert(), batch)
                batch = []
        if batch:
            conn.execute(target.insert(), batch)


def ticket_target(engine: sa.Engine, bundle_path: Path) -> QueryTarget:
    """The list query target of the installed after-sales ticket form."""
    forms = load_bundle(bundle_path).definitions["forms"]
    with UnitOfWork(engine) as uow:
        definition = DefinitionRegistry().form(uow, app="aftersales", key="ticket")
    form = compile_form(forms["ticket"], forms=forms, option_sets=definition.option_sets)
    return query_target(app="aftersales", form=form, forms=forms)

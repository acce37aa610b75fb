"""Full-text search on form tables: the index set-up, idempotent, and the matching condition.

PostgreSQL: two GIN expression indexes over one document (the form's text fields joined by
spaces): `to_tsvector('simple', doc)` for words, and `lower(doc) gin_trgm_ops` (pg_trgm) for
substrings, which Chinese text needs as it has no spaces. Without pg_trgm the substring test
still runs, as a sequential scan. SQLite: an FTS5 external-content table with the `trigram`
tokenizer (SQLite ≥ 3.34), kept in step by triggers; terms shorter than 3 characters fall back
to LIKE on the columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.storage.form_tables import FormTables

# Field types whose text is searched (keys of select fields are not words).
SEARCHED_TYPES = frozenset(
    ("text", "textarea", "rich_text", "email", "phone", "url", "autonumber")
)  # fmt: skip
_TRIGRAM_MIN = 3
MAX_TERMS = 10
_SIMPLE = "'simple'::regconfig"


def searched_columns(form: Any, tables: FormTables) -> tuple[str, ...]:
    """The columns of `form`'s main table that search looks into, in field order."""
    names: list[str] = []
    for field in getattr(form, "fields", ()):
        if str(field.type) in SEARCHED_TYPES and not getattr(field, "retired", False):
            names += [n for n in tables.field_columns.get(str(field.key), ()) if n in tables.main.c]
    return tuple(names)


def search_document(table: sa.Table | Any, columns: Sequence[str]) -> ColumnElement[Any]:
    """`lower(coalesce(a, '') || ' ' || …)`, with SQL constants so an index can match it."""
    empty: ColumnElement[Any] = sa.literal_column("''")
    space: ColumnElement[Any] = sa.literal_column("' '")
    parts: list[ColumnElement[Any]] = [
        sa.func.coalesce(sa.cast(table.c[name], sa.Text), empty) for name in columns
    ]
    doc = parts[0]
    for part in parts[1:]:
        doc = doc.op("||")(space).op("||")(part)
    return sa.func.lower(doc, type_=sa.Text)


def fts_table_name(table: str) -> str:
    return f"{table}__fts"


def _suffix(columns: Sequence[str]) -> str:
    return hashlib.sha256(",".join(columns).encode()).hexdigest()[:8]


def ensure_search_index(conn: sa.Connection, *, form: Any, tables: FormTables) -> None:
    """Create or refresh the search index of a form's table; a no-op when it is up to date.

    Call it after the form's table was created or changed, in the same transaction.
    """
    columns = searched_columns(form, tables)
    if conn.dialect.name == "postgresql":
        _ensure_postgresql(conn, tables.main, columns)
    elif conn.dialect.name == "sqlite":
        _ensure_sqlite(conn, tables.main, columns)


def _ensure_postgresql(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> None:
    name = table.name
    kind = "trgm" if has_trigram(conn) else "tsv"
    index = f"{name[:40]}_{kind}_{_suffix(columns)}"
    found = conn.execute(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t AND indexname LIKE :p"),
        {"t": name, "p": f"{name[:40]}\\_%"},
    ).scalars()
    for stale in {n for n in found if "_tsv_" in n or "_trgm_" in n} - {index}:
        conn.execute(sa.text(f'DROP INDEX IF EXISTS "{stale}"'))
    if not columns:
        return
    doc = _compiled(conn, search_document(table, columns))
    using = f"(({doc}) gin_trgm_ops)" if kind == "trgm" else f"(to_tsvector({_SIMPLE}, {doc}))"
    conn.execute(sa.text(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{name}" USING gin {using}'))


def trigram_installed(conn: sa.Connection) -> bool:
    query = sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    return conn.execute(query).first() is not None


def has_trigram(conn: sa.Connection) -> bool:
    """Whether pg_trgm is installed, installing it if this role may (in a savepoint)."""
    if trigram_installed(conn):
        return True
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def _compiled(conn: sa.Connection, element: ColumnElement[Any]) -> str:
    return str(element.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def _ensure_sqlite(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> None:
    fts = fts_table_name(table.name)
    current = [row[1] for row in conn.exec_driver_sql(f'PRAGMA table_info("{fts}")')]
    if current == list(columns):
        return
    for trigger in ("ai", "ad", "au"):
        conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{fts}_{trigger}"')
    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{fts}"')
    if not columns:
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    new = ", ".join(f'new."{c}"' for c in columns)
    old = ", ".join(f'old."{c}"' for c in columns)
    conn.exec_driver_sql(
        f'CREATE VIRTUAL TABLE "{fts}" USING fts5({cols}, content="{table.name}", '
        "content_rowid='id', tokenize='trigram')"
    )
    insert = f'INSERT INTO "{fts}"(rowid, {cols}) VALUES (new.id, {new});'
    delete = f'INSERT INTO "{fts}"("{fts}", rowid, {cols}) VALUES (\'delete\', old.id, {old});'
    statements = {
        "ai": f'AFTER INSERT ON "{table.name}" BEGIN {insert} END',
        "ad": f'AFTER DELETE ON "{table.name}" BEGIN {delete} END',
        "au": f'AFTER UPDATE ON "{table.name}" BEGIN {delete} {insert} END',
    }
    for suffix, body in statements.items():
        conn.exec_driver_sql(f'CREATE TRIGGER "{fts}_{suffix}" {body}')
    conn.exec_driver_sql(f'INSERT INTO "{fts}"("{fts}") VALUES (\'rebuild\')')


def like_pattern(text: str) -> str:
    """`%text%` with `\\`, `%` and `_` escaped by a backslash."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def has_fts_table(conn: sa.Connection, table: str) -> bool:
    query = sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n")
    return conn.execute(query, {"n": fts_table_name(table)}).first() is not None


def search_terms(text: str) -> list[str]:
    """The lower-cased, space-separated terms of a search (at most `MAX_TERMS`)."""
    return text.lower().split()[:MAX_TERMS]


def search_condition(
    conn: sa.Connection, table: Any, columns: Sequence[str], text: str, *, index: str | None
) -> ColumnElement[bool]:
    """Rows whose searched text holds every term of `text` (case-insensitive, any order).

    `table` is the form's main table; `index` the search index in place: "trgm" or "tsv" on
    PostgreSQL, "fts" on SQLite, None for none (a scan).
    """
    terms = search_terms(text)
    if not columns or not terms:
        return sa.false()
    if conn.dialect.name == "postgresql":
        doc = search_document(table, columns)
        if index == "tsv":  # words only: no pg_trgm for substrings
            query = sa.func.plainto_tsquery(sa.literal_column(_SIMPLE), " ".join(terms))
            return sa.func.to_tsvector(sa.literal_column(_SIMPLE), doc).op("@@")(query)
        # One bound, backslash-escaped pattern per term (PostgreSQL's default LIKE escape),
        # so the planner sees constant patterns and ANDs the trigram index scans.
        return sa.and_(*(doc.like(like_pattern(term)) for term in terms))
    if index == "fts" and all(len(term) >= _TRIGRAM_MIN for term in terms):
        phrases = " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)
        # The index covers every searchable column; the column filter keeps the match to the
        # ones given (an actor's visible fields), so hidden values are never matched.
        phrases = "{" + " ".join(columns) + "} : (" + phrases + ")"
        fts_name = fts_table_name(table.name)
        match = sa.text(f'SELECT rowid FROM "{fts_name}" WHERE "{fts_name}" MATCH :phrases')
        found: ColumnElement[bool] = table.c.id.in_(match.bindparams(phrases=phrases))
        return found
    return sa.and_(
        *(sa.or_(*(table.c[c].icontains(term, autoescape=True) for c in columns)) for term in terms)
    )


def search_index(conn: sa.Connection, table: str) -> str | None:
    """Which search index serves `table`: "trgm", "tsv", "fts" or None."""
    if conn.dialect.name == "postgresql":
        return "trgm" if trigram_installed(conn) else "tsv"
    return "fts" if has_fts_table(conn, table) else None


__all__ = [
    "SEARCHED_TYPES",
    "ensure_search_index",
    "fts_table_name",
    "has_fts_table",
    "has_trigram",
    "like_pattern",
    "search_condition",
    "search_document",
    "search_index",
    "search_terms",
    "trigram_installed",
    "searched_columns",
]

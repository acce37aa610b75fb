"""Database engines: SQLite (WAL, foreign keys, real BEGIN) and PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

# The pysqlite driver starts transactions lazily and never for DDL; SQLAlchemy's documented
# workaround takes over BEGIN so that SAVEPOINT and transactional DDL behave as on PostgreSQL.


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def normalise_url(url: str | URL) -> URL:
    """Map bare `postgresql://` URLs to psycopg 3 and make SQLite folders exist."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed


def create_database_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An `Engine` for `url` with Tangram's per-backend connection set-up."""
    parsed = normalise_url(url)
    engine = sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def is_postgresql(bind: Engine | sa.Connection) -> bool:
    return bind.dialect.name == "postgresql"


__all__ = ["create_database_engine", "is_postgresql", "normalise_url"]

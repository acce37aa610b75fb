"""Alembic environment: the engine's own tables (engine.storage.tables), on SQLite or PostgreSQL.

The connection comes from, in order: `config.attributes["connection"]` (set by
`engine.storage.migrate`), `sqlalchemy.url` in the config, or the Settings
(`TANGRAM_DATABASE_URL`, else the SQLite file under the data directory).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from engine.settings import Settings
from engine.storage.database import create_database_engine
from engine.storage.tables import metadata

config = context.config


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url()


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        # The SQLite engine emits a real BEGIN (database.py), so its DDL is transactional too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_database_engine(_database_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

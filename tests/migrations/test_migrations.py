"""Models and migrations agree, and the migrations run up, down and up again on each backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.storage.database import create_database_engine
from engine.storage.migrate import (
    alembic_config,
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from engine.storage.tables import metadata

ENGINE_TABLES = {table.name for table in metadata.sorted_tables}


@pytest.fixture
def scratch_engine(backend: str, db_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database of its own: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        engine = create_database_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    admin = create_database_engine(db_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = create_database_engine(db_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _diff(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "target_metadata": metadata},
    )
    return list(compare_metadata(context, metadata))


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}


def test_models_match_migrations(migrated_engine: sa.Engine) -> None:
    with migrated_engine.connect() as connection:
        assert _diff(connection) == []


def test_upgrade_downgrade_upgrade(scratch_engine: sa.Engine) -> None:
    upgrade_database(scratch_engine)
    assert ENGINE_TABLES <= _tables(scratch_engine)
    downgrade_database(scratch_engine, revision="base")
    assert _tables(scratch_engine) == set()
    upgrade_database(scratch_engine)
    with scratch_engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        assert _diff(connection) == []


def test_upgrade_inside_callers_transaction_rolls_back(scratch_engine: sa.Engine) -> None:
    with scratch_engine.connect() as connection:
        transaction = connection.begin()
        upgrade_database(connection)
        assert "apps" in sa.inspect(connection).get_table_names()
        transaction.rollback()
    assert _tables(scratch_engine) == set()


def test_upgrade_from_url_is_idempotent(backend: str, db_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else db_url
    upgrade_database(url)
    upgrade_database(url)
    engine = create_database_engine(url)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    engine.dispose()


def test_alembic_check_passes(migrated_engine: sa.Engine) -> None:
    """The `alembic check` command itself, through env.py, finds nothing to generate."""
    with migrated_engine.connect() as connection:
        command.check(alembic_config(connection))


def test_constraint_names_follow_the_convention(migrated_engine: sa.Engine) -> None:
    """Autogenerate ignores check-constraint names; SQLite conflict messages rely on them."""
    with migrated_engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in metadata.sorted_tables:
            expected = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
            found = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert found == expected, table.name
            expected_unique = {
                c.name for c in table.constraints if isinstance(c, sa.UniqueConstraint)
            } | {i.name for i in table.indexes if i.unique}
            found_unique = {u["name"] for u in inspector.get_unique_constraints(table.name)}
            found_unique |= {i["name"] for i in inspector.get_indexes(table.name) if i["unique"]}
            assert found_unique == expected_unique, table.name

"""Bring a database's engine tables to the newest Alembic revision, from code (`tangram init`).

Alembic's files are found next to the `engine` package (the repository root), not in the CWD.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from engine.storage.database import create_database_engine

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

Target = str | URL | sa.Engine | sa.Connection


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic `Config` pointing at the project's migrations, bound to `connection` if given."""
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_database(target: Target, *, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` on `target` (a URL, an `Engine` or a `Connection`).

    A `Connection` is migrated inside its current transaction, which the caller commits; URLs
    and engines are migrated in a transaction of their own.
    """
    _run(target, lambda config: command.upgrade(config, revision))


def downgrade_database(target: Target, *, revision: str = "base") -> None:
    """Run `alembic downgrade <revision>` on `target` (tests and emergency use)."""
    _run(target, lambda config: command.downgrade(config, revision))


def current_revision(conn: sa.Connection) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(target: Target, action: Callable[[Config], object]) -> None:
    if isinstance(target, sa.Connection):
        action(alembic_config(target))
        return
    engine = target if isinstance(target, sa.Engine) else create_database_engine(target)
    try:
        with engine.begin() as conn:
            action(alembic_config(conn))
    finally:
        if engine is not target:
            engine.dispose()


__all__ = [
    "alembic_config",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "upgrade_database",
]

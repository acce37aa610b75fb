"""Suite-wide fixtures: the database backends every storage test runs on.

SQLite always; PostgreSQL too when TANGRAM_TEST_DATABASE_URL is set (CI sets it, and there an
unreachable server fails the run instead of skipping).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.storage.database import create_database_engine

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TANGRAM_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL to an empty-at-session-start database of `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    assert PG_URL is not None
    return PG_URL


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    """A raw engine on the backend (no migrations applied): for SQL that needs no tables."""
    engine = create_database_engine(db_url)
    with engine.connect() as conn:  # fail loudly if the server is unreachable
        conn.execute(sa.text("SELECT 1"))
    yield engine
    engine.dispose()

"""Fixtures for worker tests: a committed effects table and handlers that write to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from engine.storage.uow import UnitOfWork
from tests.engine.jobs._handlers import EFFECTS


@pytest.fixture
def effects(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> Iterator[sa.Table]:
    """An empty effects table (no unique key, so a duplicate effect shows up as a second row)."""
    EFFECTS.drop(migrated_engine, checkfirst=True)
    EFFECTS.create(migrated_engine)
    yield EFFECTS
    EFFECTS.drop(migrated_engine, checkfirst=True)

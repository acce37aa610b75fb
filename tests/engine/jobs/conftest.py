"""Fixtures for worker tests: a committed effects table and handlers that write to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from engine.storage.uow import UnitOfWork

# The "__" makes the suite's clean-up drop it like a form table after each test.
EFFECTS = sa.Table(
    "jobtest__effects",
    sa.MetaData(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
)


@pytest.fixture
def effects(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> Iterator[sa.Table]:
    """An empty effects table (no unique key, so a duplicate effect shows up as a second row)."""
    EFFECTS.drop(migrated_engine, checkfirst=True)
    EFFECTS.create(migrated_engine)
    yield EFFECTS
    EFFECTS.drop(migrated_engine, checkfirst=True)


def effect_rows(db: sa.Engine) -> list[tuple[str, int]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(EFFECTS.c.key, EFFECTS.c.job_id).order_by(EFFECTS.c.key))
        return [(str(k), int(j)) for k, j in rows]

"""Liveness and readiness: the version and whether the database answers."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from api.deps import DatabaseDep
from api.schemas import HealthOut
from engine import __version__

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
def read_health(db: DatabaseDep) -> HealthOut:
    """Report the engine version, the backend and the migration revision."""
    with db.connect() as conn:
        revision = None
        if sa.inspect(conn).has_table("alembic_version"):
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return HealthOut(
        status="ok", version=__version__, database=db.dialect.name, migrations=revision
    )

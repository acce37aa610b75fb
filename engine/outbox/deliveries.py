"""The webhook delivery log, per endpoint: every attempt, and which endpoints are failing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.storage.tables_jobs import outbox_deliveries


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    job_id: int | None
    delivery_id: str
    endpoint: str
    attempt: int
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int
    at: datetime


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """An endpoint is failing while its latest attempt failed; it is never disabled."""

    endpoint: str
    attempts: int
    failures_since_success: int
    last_at: datetime
    last_ok_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @property
    def is_failing(self) -> bool:
        return self.failures_since_success > 0


def list_deliveries(
    conn: sa.Connection,
    *,
    endpoint: str | None = None,
    ok: bool | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """Attempts newest first, optionally for one endpoint or outcome; page with `before_id`."""
    table = outbox_deliveries
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if endpoint is not None:
        query = query.where(table.c.endpoint == endpoint)
    if ok is not None:
        query = query.where(table.c.ok.is_(ok))
    if before_id is not None:
        query = query.where(table.c.id < before_id)
    return [Delivery(**row) for row in conn.execute(query).mappings()]


def endpoint_health(conn: sa.Connection) -> list[EndpointHealth]:
    """One summary per endpoint ever called, failing ones first."""
    table = outbox_deliveries
    summary = conn.execute(
        sa.select(
            table.c.endpoint,
            sa.func.count().label("attempts"),
            sa.func.max(table.c.id).label("last_id"),
            sa.func.max(sa.case((table.c.ok, table.c.id))).label("last_ok_id"),
        ).group_by(table.c.endpoint)
    ).all()
    health = [
        _health(conn, row.endpoint, row.attempts, row.last_id, row.last_ok_id) for row in summary
    ]
    return sorted(health, key=lambda h: (not h.is_failing, h.endpoint))


def _health(
    conn: sa.Connection, endpoint: str, attempts: int, last_id: int, last_ok_id: int | None
) -> EndpointHealth:
    table = outbox_deliveries
    last = conn.execute(sa.select(table).where(table.c.id == last_id)).mappings().one()
    last_ok_at = None
    if last_ok_id is not None:
        last_ok_at = conn.execute(sa.select(table.c.at).where(table.c.id == last_ok_id)).scalar()
    failures = conn.execute(
        sa.select(sa.func.count()).where(
            table.c.endpoint == endpoint, table.c.id > (last_ok_id or 0), table.c.ok.is_(False)
        )
    ).scalar_one()
    return EndpointHealth(
        endpoint=endpoint,
        attempts=int(attempts),
        failures_since_success=int(failures),
        last_at=last["at"],
        last_ok_at=last_ok_at,
        last_status_code=last["status_code"],
        last_error=last["error"],
    )


__all__ = ["Delivery", "EndpointHealth", "endpoint_health", "list_deliveries"]

"""The audit log: who did what to which definition, record or user, and when (append-only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.storage.records import AuditEntry
from engine.storage.sqltypes import utc_now
from engine.storage.tables import audit_log

MAX_PAGE = 1000


class AuditLog:
    """Writes and reads `audit_log` rows; entries are never updated or deleted here."""

    def __init__(self, conn: sa.Connection, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def record(
        self,
        *,
        action: str,
        target_kind: str,
        target_key: str,
        actor: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append one entry (e.g. action "definition.publish", target "form" "aftersales.ticket").

        Returns the new entry's id.
        """
        result = self._conn.execute(
            sa.insert(audit_log)
            .values(
                at=self._clock(),
                actor_id=actor,
                action=action,
                target_kind=target_kind,
                target_key=target_key,
                detail=detail or {},
            )
            .returning(audit_log.c.id)
        )
        return int(result.scalar_one())

    def query(
        self,
        *,
        action: str | None = None,
        target_kind: str | None = None,
        target_key: str | None = None,
        actor: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first; page on with `before_id`."""
        filters = [
            audit_log.c.action == action if action is not None else None,
            audit_log.c.target_kind == target_kind if target_kind is not None else None,
            audit_log.c.target_key == target_key if target_key is not None else None,
            audit_log.c.actor_id == actor if actor is not None else None,
            audit_log.c.at >= since if since is not None else None,
            audit_log.c.at < until if until is not None else None,
            audit_log.c.id < before_id if before_id is not None else None,
        ]
        query = (
            sa.select(audit_log)
            .where(*(condition for condition in filters if condition is not None))
            .order_by(audit_log.c.id.desc())
            .limit(max(1, min(limit, MAX_PAGE)))
        )
        return [AuditEntry(**row._mapping) for row in self._conn.execute(query)]


__all__ = ["MAX_PAGE", "AuditLog"]

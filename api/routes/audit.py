"""The audit log over HTTP (admins only): filter by action, actor, target and time; page on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.security import AdminActorDep
from engine.storage.uow import UnitOfWork

router = APIRouter(tags=["audit"])


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    target_kind: str
    target_key: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older entries")


@router.get("/audit", response_model=AuditPage)
def list_audit(
    actor: AdminActorDep,
    db: DatabaseDep,
    action: str | None = None,
    actor_id: int | None = Query(None, alias="actor"),
    target_kind: str | None = None,
    target_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = Query(None, pattern=r"^[0-9]{1,19}$"),
    limit: int = Query(50, ge=1, le=500),
) -> AuditPage:
    """Entries newest first; `since` inclusive, `until` exclusive."""
    with UnitOfWork(db) as uow:
        entries = uow.audit.query(
            action=action,
            actor=actor_id,
            target_kind=target_kind,
            target_key=target_key,
            since=since,
            until=until,
            before_id=None if cursor is None else int(cursor),
            limit=limit + 1,
        )
    page = entries[:limit]
    more = len(entries) > limit
    return AuditPage(
        items=[
            AuditEntryOut(**{k: getattr(e, k) for k in AuditEntryOut.model_fields}) for e in page
        ],
        next_cursor=str(page[-1].id) if more else None,
    )


__all__ = ["router"]

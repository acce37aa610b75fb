"""The signed-in user's in-app notifications: list (unread first) and mark read."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import DatabaseDep
from api.security import RequiredActorDep
from engine.outbox import list_notifications, mark_read
from engine.outbox.notifications import Notification
from engine.storage.uow import UnitOfWork

router = APIRouter(tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    subject: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, item: Notification) -> NotificationOut:
        return cls(
            id=item.id,
            subject=item.subject,
            body=item.body,
            link=item.link,
            created_at=item.created_at,
            read_at=item.read_at,
        )


class NotificationList(BaseModel):
    items: list[NotificationOut]


@router.get("/notifications", response_model=NotificationList)
def my_notifications(
    actor: RequiredActorDep,
    db: DatabaseDep,
    unread: bool = Query(False, description="Only unread ones"),
    limit: int = Query(50, ge=1, le=200),
) -> NotificationList:
    """My notifications: unread first, newest first within each group."""
    with UnitOfWork(db) as uow:
        items = list_notifications(uow.conn, user_id=actor.user_id, unread_only=unread, limit=limit)
    return NotificationList(items=[NotificationOut.of(item) for item in items])


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
def read_notification(
    notification_id: int, actor: RequiredActorDep, db: DatabaseDep
) -> NotificationOut:
    """Mark one of my notifications read; 404 for someone else's."""
    with UnitOfWork(db) as uow:
        item = mark_read(uow.conn, user_id=actor.user_id, notification_id=notification_id)
        uow.commit()
    return NotificationOut.of(item)


__all__ = ["router"]

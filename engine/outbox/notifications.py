"""In-app notifications: rows a user reads in the app, and the e-mail jobs that copy them out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import EngineError, NotFoundError
from engine.jobs.queue import enqueue
from engine.storage.sqltypes import utc_now
from engine.storage.tables import users
from engine.storage.tables_jobs import outbox_notifications

CHANNELS = ("in_app", "email")
EMAIL_JOB = "outbox.email"


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    user_id: int
    subject: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


def notify(
    conn: sa.Connection,
    *,
    user_ids: Iterable[int],
    subject: str,
    body: str,
    link: str | None = None,
    channels: Iterable[str] = ("in_app", "email"),
    key: str | None = None,
) -> int:
    """Notify users in the caller's transaction: in-app rows now, e-mail as jobs.

    With a `key`, notifying the same user under the same key again adds nothing. E-mail goes
    only to users who have an address. Returns how many in-app notifications were created.

    Raises:
        EngineError: `outbox.unknown-channel` for a channel other than in_app and email.
    """
    wanted = tuple(channels)
    unknown = [c for c in wanted if c not in CHANNELS]
    if unknown:
        raise EngineError(f"unknown notification channel {unknown[0]!r}", code=UNKNOWN_CHANNEL)
    recipients = list(dict.fromkeys(int(u) for u in user_ids))
    created = 0
    if "in_app" in wanted:
        for user_id in recipients:
            created += _insert_in_app(conn, user_id, subject, body, link, key)
    if "email" in wanted and recipients:
        rows = conn.execute(
            sa.select(users.c.id).where(
                users.c.id.in_(recipients), users.c.email.is_not(None), users.c.email != ""
            )
        )
        for (user_id,) in rows.all():
            enqueue(
                conn,
                kind=EMAIL_JOB,
                payload={"user_id": user_id, "subject": subject, "body": body, "link": link},
                due_at=utc_now(),
                key=None if key is None else f"email:{key}:{user_id}",
            )
    return created


def _insert_in_app(
    conn: sa.Connection, user_id: int, subject: str, body: str, link: str | None, key: str | None
) -> int:
    values = {
        "user_id": user_id,
        "subject": subject[:300],
        "body": body,
        "link": link,
        "key": key,
        "created_at": utc_now(),
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(outbox_notifications)
        .values(values)
        .on_conflict_do_nothing()
        .returning(outbox_notifications.c.id)
    )
    return 0 if conn.execute(statement).scalar_one_or_none() is None else 1


def list_notifications(
    conn: sa.Connection, *, user_id: int, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """A user's notifications: unread first, newest first within each group."""
    table = outbox_notifications
    query = sa.select(table).where(table.c.user_id == user_id)
    if unread_only:
        query = query.where(table.c.read_at.is_(None))
    unread_first = sa.case((table.c.read_at.is_(None), 0), else_=1)
    query = query.order_by(unread_first, table.c.created_at.desc(), table.c.id.desc())
    return [_notification(row) for row in conn.execute(query.limit(limit)).mappings()]


def mark_read(conn: sa.Connection, *, user_id: int, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (again is harmless).

    Raises:
        NotFoundError: `outbox.notification-not-found`, also for another user's notification.
    """
    table = outbox_notifications
    mine = sa.and_(table.c.id == notification_id, table.c.user_id == user_id)
    conn.execute(table.update().where(mine, table.c.read_at.is_(None)).values(read_at=utc_now()))
    row = conn.execute(sa.select(table).where(mine)).mappings().first()
    if row is None:
        raise NotFoundError("no such notification", code=NOTIFICATION_NOT_FOUND)
    return _notification(row)


def _notification(row: sa.RowMapping) -> Notification:
    return Notification(
        id=row["id"],
        user_id=row["user_id"],
        subject=row["subject"],
        body=row["body"],
        link=row["link"],
        created_at=row["created_at"],
        read_at=row["read_at"],
    )


UNKNOWN_CHANNEL = "outbox.unknown-channel"
NOTIFICATION_NOT_FOUND = "outbox.notification-not-found"

__all__ = [
    "CHANNELS",
    "EMAIL_JOB",
    "NOTIFICATION_NOT_FOUND",
    "UNKNOWN_CHANNEL",
    "Notification",
    "list_notifications",
    "mark_read",
    "notify",
]

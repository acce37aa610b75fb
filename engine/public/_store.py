"""Rows of public links and tracking tokens (SQL only; the service decides what they mean)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.public.errors import LINK_NOT_FOUND
from engine.storage.tables_public import public_links, public_tracking


@dataclass(frozen=True, slots=True)
class PublicLink:
    """A stored public link; `options` is a dumped `PublicLinkSpec` without its state."""

    id: int
    token: str
    app: str
    form: str
    label: str | None
    options: dict[str, Any]
    enabled: bool
    expires_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime

    def is_open(self, now: datetime) -> bool:
        return self.enabled and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class TrackingRow:
    link_id: int
    record_id: int


class LinkStore:
    def __init__(self, conn: sa.Connection, *, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def insert(self, *, token: str, app: str, form: str, values: dict[str, Any]) -> PublicLink:
        row = {"token": token, "app": app, "form": form, **values}
        row |= {"created_at": self._now, "updated_at": self._now}
        new_id = self._conn.execute(
            sa.insert(public_links).values(**row).returning(public_links.c.id)
        ).scalar_one()
        return self.get(link_id=int(new_id))

    def get(self, *, link_id: int) -> PublicLink:
        found = self._one(public_links.c.id == link_id)
        if found is None:
            raise NotFoundError(f"public link {link_id} not found", code=LINK_NOT_FOUND)
        return found

    def find(self, *, token: str) -> PublicLink | None:
        return self._one(public_links.c.token == token)

    def list_for(self, *, app: str, form: str) -> list[PublicLink]:
        query = (
            sa.select(public_links)
            .where(public_links.c.app == app, public_links.c.form == form)
            .order_by(public_links.c.id)
        )
        links = [PublicLink(**row._mapping) for row in self._conn.execute(query)]
        return [x for x in links if x.options.get("kind") != "answer"]  # one-time links

    def list_app(self, *, app: str) -> list[PublicLink]:
        query = sa.select(public_links).where(public_links.c.app == app).order_by(public_links.c.id)
        return [PublicLink(**row._mapping) for row in self._conn.execute(query)]

    def update(self, *, link_id: int, values: dict[str, Any]) -> PublicLink:
        self._conn.execute(
            sa.update(public_links)
            .where(public_links.c.id == link_id)
            .values(**values, updated_at=self._now)
        )
        return self.get(link_id=link_id)

    def _one(self, condition: sa.ColumnElement[bool]) -> PublicLink | None:
        row = self._conn.execute(sa.select(public_links).where(condition)).first()
        return None if row is None else PublicLink(**row._mapping)


class TrackingStore:
    def __init__(self, conn: sa.Connection, *, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def insert(self, *, token_hash: str, link_id: int, record_id: int) -> None:
        self._conn.execute(
            sa.insert(public_tracking).values(
                token_hash=token_hash, link_id=link_id, record_id=record_id, created_at=self._now
            )
        )

    def find(self, *, token_hash: str) -> TrackingRow | None:
        row = self._conn.execute(
            sa.select(public_tracking.c.link_id, public_tracking.c.record_id).where(
                public_tracking.c.token_hash == token_hash
            )
        ).first()
        return None if row is None else TrackingRow(int(row.link_id), int(row.record_id))


__all__ = ["LinkStore", "PublicLink", "TrackingRow", "TrackingStore"]

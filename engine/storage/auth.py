"""Sign-in state: server-side sessions, API tokens and failed sign-ins, keyed by sha256 digests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.storage.sqltypes import utc_now
from engine.storage.tables import api_tokens, auth_sessions, login_failures

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    user_id: int
    csrf_hash: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


_SESSION_COLUMNS = tuple(auth_sessions.c[name] for name in SessionRecord.__slots__)
_TOKEN_COLUMNS = tuple(api_tokens.c[name] for name in TokenRecord.__slots__)


class SessionStore:
    """Browser sessions; a session is found by the digest of its cookie value."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(
        self,
        *,
        user_id: int,
        token_hash: str,
        csrf_hash: str,
        expires_at: datetime,
        client: str | None = None,
    ) -> int:
        now = self._clock()
        result = self._conn.execute(
            sa.insert(auth_sessions)
            .values(
                user_id=user_id,
                token_hash=token_hash,
                csrf_hash=csrf_hash,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                client=client,
            )
            .returning(auth_sessions.c.id)
        )
        return int(result.scalar_one())

    def find(self, *, token_hash: str) -> SessionRecord | None:
        query = sa.select(*_SESSION_COLUMNS).where(auth_sessions.c.token_hash == token_hash)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else SessionRecord(**row._mapping)

    def touch(self, *, session_id: int, at: datetime) -> None:
        self._conn.execute(
            sa.update(auth_sessions).where(auth_sessions.c.id == session_id).values(last_seen_at=at)
        )

    def end(self, *, session_id: int) -> None:
        self._conn.execute(
            sa.update(auth_sessions)
            .where(auth_sessions.c.id == session_id, auth_sessions.c.ended_at.is_(None))
            .values(ended_at=self._clock())
        )

    def end_all(self, *, user_id: int) -> int:
        """End every open session of a user (disabled, or password changed)."""
        result = self._conn.execute(
            sa.update(auth_sessions)
            .where(auth_sessions.c.user_id == user_id, auth_sessions.c.ended_at.is_(None))
            .values(ended_at=self._clock())
        )
        return int(result.rowcount)


class TokenStore:
    """API tokens; the secret itself is never stored, only its digest and a display prefix."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(
        self,
        *,
        user_id: int,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None,
    ) -> TokenRecord:
        result = self._conn.execute(
            sa.insert(api_tokens)
            .values(
                user_id=user_id,
                name=name,
                prefix=prefix,
                token_hash=token_hash,
                created_at=self._clock(),
                expires_at=expires_at,
            )
            .returning(api_tokens.c.id)
        )
        return self.get(token_id=int(result.scalar_one()))

    def get(self, *, token_id: int) -> TokenRecord:
        query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError(f"token {token_id} does not exist", code="identity.token-not-found")
        return TokenRecord(**row._mapping)

    def find(self, *, token_hash: str) -> TokenRecord | None:
        query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.token_hash == token_hash)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else TokenRecord(**row._mapping)

    def list_tokens(self, *, user_id: int | None = None) -> list[TokenRecord]:
        query = sa.select(*_TOKEN_COLUMNS).order_by(api_tokens.c.id)
        if user_id is not None:
            query = query.where(api_tokens.c.user_id == user_id)
        return [TokenRecord(**row._mapping) for row in self._conn.execute(query)]

    def mark_used(self, *, token_id: int, at: datetime) -> None:
        self._conn.execute(
            sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at)
        )

    def revoke(self, *, token_id: int) -> bool:
        result = self._conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )
        return result.rowcount > 0


class LoginFailureStore:
    """Failed sign-ins in the database, so every API process sees the same count."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def add(self, *, username: str, client: str) -> None:
        self._conn.execute(
            sa.insert(login_failures).values(at=self._clock(), username=username, client=client)
        )

    def recent(
        self, *, since: datetime, username: str | None = None, client: str | None = None
    ) -> tuple[int, datetime | None]:
        """How many failures since `since` for the username or the client, and the oldest one."""
        column = login_failures.c.username if username is not None else login_failures.c.client
        value = username if username is not None else client
        query = sa.select(sa.func.count(), sa.func.min(login_failures.c.at)).where(
            column == value, login_failures.c.at >= since
        )
        count, oldest = self._conn.execute(query).one()
        return int(count), oldest

    def clear(self, *, username: str) -> None:
        self._conn.execute(sa.delete(login_failures).where(login_failures.c.username == username))

    def prune(self, *, before: datetime, username: str, client: str) -> int:
        """Forget failures older than `before` of this username and client (index-backed)."""
        result = self._conn.execute(
            sa.delete(login_failures).where(
                sa.or_(login_failures.c.username == username, login_failures.c.client == client),
                login_failures.c.at < before,
            )
        )
        return int(result.rowcount)


__all__ = [
    "LoginFailureStore",
    "SessionRecord",
    "SessionStore",
    "TokenRecord",
    "TokenStore",
]

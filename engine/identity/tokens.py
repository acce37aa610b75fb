"""API tokens for integrations: `tgm_<random>`, shown once, stored as a sha256 digest.

A token carries 256 random bits, so a plain sha256 is enough: there is nothing to guess, and
unlike a password hash it can be looked up by equality on every request (an indexed column).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from engine.errors import PermissionDenied
from engine.identity.actor import Actor
from engine.identity.errors import TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_REVOKED, NotAuthenticated
from engine.identity.sessions import TOUCH_EVERY, digest
from engine.storage.auth import TokenRecord, TokenStore
from engine.storage.uow import UnitOfWork

TOKEN_PREFIX = "tgm_"
SHOWN_CHARACTERS = 8  # of the random part, kept to tell tokens apart in listings


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created; `token` is the secret, never retrievable again."""

    token: str
    record: TokenRecord


def create_token(
    *, uow: UnitOfWork, actor: Actor, name: str, expires_at: datetime | None = None
) -> NewToken:
    """Create a token acting as `actor`'s user."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenStore(uow.conn, clock=uow.clock).create(
        user_id=actor.user_id,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + SHOWN_CHARACTERS],
        token_hash=digest(secret),
        expires_at=expires_at,
    )
    uow.audit.record(
        action="token.create",
        target_kind="token",
        target_key=str(record.id),
        actor=actor.user_id,
        detail={"name": name, "prefix": record.prefix},
    )
    return NewToken(secret, record)


def list_tokens(*, uow: UnitOfWork, actor: Actor, every_user: bool = False) -> list[TokenRecord]:
    """The actor's tokens, or everyone's for an admin asking for `every_user`."""
    user_id = None if every_user and actor.is_admin else actor.user_id
    return TokenStore(uow.conn, clock=uow.clock).list_tokens(user_id=user_id)


def revoke_token(*, uow: UnitOfWork, actor: Actor, token_id: int) -> bool:
    """Revoke one of the actor's tokens (an admin may revoke anyone's); False if already so."""
    store = TokenStore(uow.conn, clock=uow.clock)
    record = store.get(token_id=token_id)
    if record.user_id != actor.user_id and not actor.is_admin:
        raise PermissionDenied("not your token")
    done = store.revoke(token_id=token_id)
    if done:
        uow.audit.record(
            action="token.revoke",
            target_kind="token",
            target_key=str(token_id),
            actor=actor.user_id,
            detail={"name": record.name, "prefix": record.prefix, "owner": record.user_id},
        )
    return done


def resolve_token(*, uow: UnitOfWork, token: str) -> TokenRecord:
    """The live token record of a bearer secret; its last use is recorded (to the minute).

    Raises:
        NotAuthenticated: unknown (`identity.token-invalid`), revoked or expired token.
    """
    store = TokenStore(uow.conn, clock=uow.clock)
    record = store.find(token_hash=digest(token)) if token.startswith(TOKEN_PREFIX) else None
    if record is None:
        raise NotAuthenticated("unknown API token", code=TOKEN_INVALID)
    if record.revoked_at is not None:
        raise NotAuthenticated("the API token was revoked", code=TOKEN_REVOKED)
    now = uow.clock()
    if record.expires_at is not None and now >= record.expires_at:
        raise NotAuthenticated("the API token has expired", code=TOKEN_EXPIRED)
    if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY:
        store.mark_used(token_id=record.id, at=now)
    return record


__all__ = [
    "TOKEN_PREFIX",
    "NewToken",
    "create_token",
    "list_tokens",
    "resolve_token",
    "revoke_token",
]

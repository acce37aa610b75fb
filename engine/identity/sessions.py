"""Browser sign-in: password check, throttling, server-side sessions and their CSRF tokens.

The cookie carries a random session token; the database keeps only its sha256 digest, so a
leaked table cannot be replayed. Each session also has a CSRF token (digest stored) that
cookie-authenticated unsafe requests must echo in a header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import PermissionDenied
from engine.identity.errors import (
    BAD_CREDENTIALS,
    CSRF_FAILED,
    SESSION_EXPIRED,
    NotAuthenticated,
    TooManyAttempts,
)
from engine.identity.passwords import PasswordPolicy
from engine.settings import Settings
from engine.storage.auth import LoginFailureStore, SessionRecord, SessionStore
from engine.storage.uow import UnitOfWork

TOUCH_EVERY = timedelta(seconds=60)  # fewer writes: last_seen moves at most once a minute


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """Session lifetimes, throttle limits and password hashing, from `Settings`."""

    passwords: PasswordPolicy
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)
    window: timedelta = timedelta(minutes=15)
    max_failures_per_user: int = 5
    max_failures_per_client: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInPolicy:
        return cls(
            passwords=PasswordPolicy(
                time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
            ),
            idle=timedelta(seconds=settings.session_idle_seconds),
            absolute=timedelta(seconds=settings.session_max_seconds),
            window=timedelta(seconds=settings.login_window_seconds),
            max_failures_per_user=settings.login_max_failures_per_user,
            max_failures_per_client=settings.login_max_failures_per_client,
        )


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `token` goes in the cookie, `csrf_token` to the client once."""

    session_id: int
    user_id: int
    token: str
    csrf_token: str
    expires_at: datetime


def digest(secret: str) -> str:
    """sha256 hex of a high-entropy secret (no salt or stretching needed: it is not guessable)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def sign_in(
    *,
    uow: UnitOfWork,
    policy: SignInPolicy,
    username: str,
    password: str,
    client: str,
    previous_token: str | None = None,
) -> NewSession:
    """Check the password and open a new session (always a new id: no session fixation).

    Failures are written to the database and committed before raising, so the throttle holds
    across processes.

    Raises:
        TooManyAttempts: too many recent failures for this username or client address.
        NotAuthenticated: unknown user, wrong password or disabled user (one code for all).
    """
    failures = LoginFailureStore(uow.conn, clock=uow.clock)
    _check_throttle(uow, policy, failures, username=username, client=client)
    user = uow.users.find_by_username(username=username)
    matches, new_hash = policy.passwords.verify(
        None if user is None else user.password_hash, password
    )
    if user is None or not matches or user.status != "active":
        failures.prune(before=uow.clock() - policy.window, username=username, client=client)
        failures.add(username=username, client=client)
        uow.audit.record(
            action="auth.login-failed",
            target_kind="user",
            target_key=username,
            actor=None if user is None else user.id,
            detail={"client": client},
        )
        uow.commit()
        raise NotAuthenticated("wrong username or password", code=BAD_CREDENTIALS)
    if new_hash is not None:
        uow.users.update(user_id=user.id, password_hash=new_hash)
    if previous_token:
        sign_out(uow=uow, token=previous_token)
    failures.clear(username=username)
    opened = _open(uow, policy, user.id, client)
    uow.audit.record(
        action="auth.login",
        target_kind="user",
        target_key=username,
        actor=user.id,
        detail={"client": client, "session": opened.session_id},
    )
    uow.commit()
    return opened


def _check_throttle(
    uow: UnitOfWork,
    policy: SignInPolicy,
    failures: LoginFailureStore,
    *,
    username: str,
    client: str,
) -> None:
    now = uow.clock()
    since = now - policy.window
    checks = (
        (failures.recent(since=since, username=username), policy.max_failures_per_user),
        (failures.recent(since=since, client=client), policy.max_failures_per_client),
    )
    for (count, oldest), limit in checks:
        if count >= limit and oldest is not None:
            wait = (oldest + policy.window - now).total_seconds()
            raise TooManyAttempts("too many failed sign-ins", retry_after=max(1, int(wait) + 1))


def _open(uow: UnitOfWork, policy: SignInPolicy, user_id: int, client: str) -> NewSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = uow.clock() + policy.absolute
    session_id = SessionStore(uow.conn, clock=uow.clock).create(
        user_id=user_id,
        token_hash=digest(token),
        csrf_hash=digest(csrf),
        expires_at=expires_at,
        client=client,
    )
    return NewSession(session_id, user_id, token, csrf, expires_at)


def sign_out(*, uow: UnitOfWork, token: str) -> bool:
    """End the session of `token` on the server; False when it was unknown or already over."""
    store = SessionStore(uow.conn, clock=uow.clock)
    session = store.find(token_hash=digest(token))
    if session is None or session.ended_at is not None:
        return False
    store.end(session_id=session.id)
    uow.audit.record(
        action="auth.logout",
        target_kind="user",
        target_key=uow.users.get(user_id=session.user_id).username,
        actor=session.user_id,
        detail={"session": session.id},
    )
    return True


def resolve_session(*, uow: UnitOfWork, policy: SignInPolicy, token: str) -> SessionRecord:
    """The open session of a cookie token, its idle clock moved on.

    Raises:
        NotAuthenticated: unknown, ended, idle too long or past its absolute expiry.
    """
    store = SessionStore(uow.conn, clock=uow.clock)
    session = store.find(token_hash=digest(token))
    now = uow.clock()
    if session is None or session.ended_at is not None:
        raise NotAuthenticated("not signed in", code=SESSION_EXPIRED)
    if now >= session.expires_at or now - session.last_seen_at >= policy.idle:
        store.end(session_id=session.id)
        raise NotAuthenticated("the session has expired", code=SESSION_EXPIRED)
    if now - session.last_seen_at >= TOUCH_EVERY:
        store.touch(session_id=session.id, at=now)
    return session


def check_csrf(session: SessionRecord, csrf_token: str | None) -> None:
    """Raise PermissionDenied unless `csrf_token` is the session's CSRF token."""
    if not csrf_token or not hmac.compare_digest(digest(csrf_token), session.csrf_hash):
        raise PermissionDenied("missing or wrong CSRF token", code=CSRF_FAILED)


__all__ = [
    "NewSession",
    "SignInPolicy",
    "check_csrf",
    "digest",
    "resolve_session",
    "sign_in",
    "sign_out",
]

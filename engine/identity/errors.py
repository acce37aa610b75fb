"""Sign-in errors: who is asking is unknown (401) or asks too often (429)."""

from __future__ import annotations

from engine.errors import EngineError

BAD_CREDENTIALS = "identity.bad-credentials"
NOT_AUTHENTICATED = "identity.not-authenticated"
SESSION_EXPIRED = "identity.session-expired"
TOKEN_INVALID = "identity.token-invalid"
TOKEN_REVOKED = "identity.token-revoked"
TOKEN_EXPIRED = "identity.token-expired"
USER_DISABLED = "identity.user-disabled"
CSRF_FAILED = "identity.csrf-failed"
TOO_MANY_ATTEMPTS = "identity.too-many-attempts"


class NotAuthenticated(EngineError):
    """No valid credentials: bad password, unknown, ended or expired session or token."""

    code = NOT_AUTHENTICATED


class TooManyAttempts(EngineError):
    """Sign-in refused by the throttle; `retry_after` is in whole seconds."""

    code = TOO_MANY_ATTEMPTS

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


__all__ = [
    "BAD_CREDENTIALS",
    "CSRF_FAILED",
    "NOT_AUTHENTICATED",
    "SESSION_EXPIRED",
    "TOKEN_EXPIRED",
    "TOKEN_INVALID",
    "TOKEN_REVOKED",
    "TOO_MANY_ATTEMPTS",
    "USER_DISABLED",
    "NotAuthenticated",
    "TooManyAttempts",
]

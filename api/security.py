"""Who is calling: the `Actor` behind a session cookie or a bearer token, and CSRF checks.

Cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE) must send the session's CSRF
token in the `X-CSRF-Token` header; bearer tokens are not sent by browsers on their own, so
token-authenticated requests are exempt.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import PROBLEM_JSON, problem_body
from engine.errors import EngineError, PermissionDenied
from engine.identity.actor import Actor
from engine.identity.errors import NOT_AUTHENTICATED, NotAuthenticated, TooManyAttempts
from engine.identity.service import Authentication, authenticate_session, authenticate_token
from engine.identity.sessions import SignInPolicy
from engine.storage.uow import UnitOfWork

SESSION_COOKIE = "tangram_session"
CSRF_COOKIE = "tangram_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNSET = object()


def sign_in_policy(request: Request) -> SignInPolicy:
    """The app's sign-in policy, built from its settings on first use."""
    state = request.app.state
    policy: SignInPolicy | None = getattr(state, "sign_in_policy", None)
    if policy is None:
        policy = SignInPolicy.from_settings(state.settings)
        state.sign_in_policy = policy
    return policy


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def get_authentication(request: Request) -> Authentication | None:
    """Authenticate the request once (cached on `request.state`); None when anonymous.

    Raises:
        NotAuthenticated: a credential was sent but is unknown, ended, expired or revoked.
        PermissionDenied: a cookie-authenticated unsafe request without the right CSRF token.
    """
    cached = getattr(request.state, "authentication", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    token, cookie = bearer_token(request), request.cookies.get(SESSION_COOKIE)
    result: Authentication | None = None
    if token is not None or cookie:
        with UnitOfWork(request.app.state.db) as uow:
            result = _authenticate(request, uow, token, cookie)
            uow.commit()
    request.state.authentication = result
    return result


def _authenticate(
    request: Request, uow: UnitOfWork, token: str | None, cookie: str | None
) -> Authentication:
    if token is not None:
        return authenticate_token(uow=uow, token=token)
    return authenticate_session(
        uow=uow,
        policy=sign_in_policy(request),
        token=cookie or "",
        csrf_token=request.headers.get(CSRF_HEADER),
        unsafe=request.method.upper() not in SAFE_METHODS,
    )


def get_actor(request: Request) -> Actor | None:
    """The actor of the request, or None when anonymous."""
    authentication = get_authentication(request)
    return None if authentication is None else authentication.actor


def require_actor(request: Request) -> Actor:
    """The actor of the request; 401 (`identity.not-authenticated`) when anonymous."""
    actor = get_actor(request)
    if actor is None:
        raise NotAuthenticated("sign in first", code=NOT_AUTHENTICATED)
    return actor


def require_admin_actor(request: Request) -> Actor:
    """The actor of the request when an admin; 401 when anonymous, 403 otherwise."""
    actor = require_actor(request)
    if not actor.is_admin:
        raise PermissionDenied("administrators only")
    return actor


ActorDep = Annotated[Actor | None, Depends(get_actor)]
RequiredActorDep = Annotated[Actor, Depends(require_actor)]
AdminActorDep = Annotated[Actor, Depends(require_admin_actor)]
AuthenticationDep = Annotated[Authentication | None, Depends(get_authentication)]


def _problem(
    err: EngineError, request: Request, status: int, headers: dict[str, str]
) -> JSONResponse:
    body = problem_body(err, status=status, instance=request.url.path)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _handle_not_authenticated(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotAuthenticated)  # registered for this class only
    return _problem(exc, request, 401, {"WWW-Authenticate": 'Bearer realm="tangram"'})


async def _handle_too_many(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TooManyAttempts)  # registered for this class only
    return _problem(exc, request, 429, {"Retry-After": str(exc.retry_after)})


def install_security_handlers(app: FastAPI) -> None:
    """401 and 429 problem responses (more specific than the EngineError handler)."""
    app.add_exception_handler(NotAuthenticated, _handle_not_authenticated)
    app.add_exception_handler(TooManyAttempts, _handle_too_many)


__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "ActorDep",
    "AdminActorDep",
    "AuthenticationDep",
    "RequiredActorDep",
    "bearer_token",
    "get_actor",
    "get_authentication",
    "install_security_handlers",
    "require_actor",
    "require_admin_actor",
    "sign_in_policy",
]

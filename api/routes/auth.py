"""Sign-in over HTTP: login, logout, the current actor, and the actor's API tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.deps import DatabaseDep, SettingsDep
from api.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    RequiredActorDep,
    get_authentication,
    sign_in_policy,
)
from engine.identity.actor import Actor
from engine.identity.errors import NotAuthenticated
from engine.identity.service import load_actor
from engine.identity.sessions import sign_in, sign_out
from engine.identity.tokens import create_token, list_tokens, revoke_token
from engine.storage.auth import TokenRecord
from engine.storage.uow import UnitOfWork

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class ActorOut(BaseModel):
    id: int
    username: str
    display_name: str
    is_admin: bool
    department_ids: list[int]
    roles: dict[str, list[str]]

    @classmethod
    def of(cls, actor: Actor) -> ActorOut:
        return cls(
            id=actor.user_id,
            username=actor.username,
            display_name=actor.display_name,
            is_admin=actor.is_admin,
            department_ids=sorted(actor.department_ids),
            roles={app: sorted(keys) for app, keys in actor.roles.items()},
        )


class LoginOut(BaseModel):
    csrf_token: str = Field(description="Send it as X-CSRF-Token on POST/PUT/PATCH/DELETE")
    expires_at: datetime
    user: ActorOut


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    user_id: int
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: TokenRecord) -> TokenOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown only now")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=LoginOut)
def login(
    body: LoginIn, request: Request, response: Response, db: DatabaseDep, settings: SettingsDep
) -> LoginOut:
    """Check the password and open a session: a new session cookie and a CSRF token."""
    with UnitOfWork(db) as uow:
        opened = sign_in(
            uow=uow,
            policy=sign_in_policy(request),
            username=body.username,
            password=body.password,
            client=_client(request),
            previous_token=request.cookies.get(SESSION_COOKIE),
        )
        actor = load_actor(uow=uow, user_id=opened.user_id)
        max_age = int((opened.expires_at - uow.clock()).total_seconds())
    secure = settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE, opened.token, max_age=max_age, httponly=True, secure=secure, samesite="lax"
    )
    response.set_cookie(
        CSRF_COOKIE,
        opened.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="lax",
    )
    return LoginOut(
        csrf_token=opened.csrf_token, expires_at=opened.expires_at, user=ActorOut.of(actor)
    )


@router.post("/logout", status_code=204)
def logout(request: Request, db: DatabaseDep) -> Response:
    """End the session on the server and drop the cookies.

    A live session must send its CSRF token (403 otherwise); a session already over just loses
    its cookies.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        authentication = get_authentication(request)
    except NotAuthenticated:
        authentication = None
    if authentication is not None and authentication.method == "session" and cookie:
        with UnitOfWork(db) as uow:
            sign_out(uow=uow, token=cookie)
            uow.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/me", response_model=ActorOut)
def me(actor: RequiredActorDep) -> ActorOut:
    """The signed-in user, with departments and roles per app ("" holds global roles)."""
    return ActorOut.of(actor)


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def create_api_token(body: TokenIn, actor: RequiredActorDep, db: DatabaseDep) -> NewTokenOut:
    """Create an API token for the signed-in user; the secret is in this response only."""
    with UnitOfWork(db) as uow:
        new = create_token(uow=uow, actor=actor, name=body.name, expires_at=body.expires_at)
        uow.commit()
    return NewTokenOut(**TokenOut.of(new.record).model_dump(), token=new.token)


@router.get("/tokens", response_model=list[TokenOut])
def list_api_tokens(actor: RequiredActorDep, db: DatabaseDep, all: bool = False) -> list[TokenOut]:
    """The user's tokens (never the secrets); admins may ask for everyone's with `all=true`."""
    with UnitOfWork(db) as uow:
        return [TokenOut.of(r) for r in list_tokens(uow=uow, actor=actor, every_user=all)]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_api_token(token_id: int, actor: RequiredActorDep, db: DatabaseDep) -> Response:
    """Revoke a token: later requests with it get 401 `identity.token-revoked`."""
    with UnitOfWork(db) as uow:
        revoke_token(uow=uow, actor=actor, token_id=token_id)
        uow.commit()
    return Response(status_code=204)


__all__ = ["router"]

"""Who is asking: credentials (session cookie or bearer token) to an `Actor`, and its roles."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from engine.identity.actor import ADMIN_ROLE, GLOBAL, Actor
from engine.identity.errors import USER_DISABLED, NotAuthenticated
from engine.identity.sessions import SignInPolicy, check_csrf, resolve_session
from engine.identity.spec import RoleSpec
from engine.identity.tokens import resolve_token
from engine.storage.uow import UnitOfWork

ROLE_KIND = "roles"


@dataclass(frozen=True, slots=True)
class Authentication:
    """An authenticated request: the actor, how it signed in, and the session when a cookie."""

    actor: Actor
    method: Literal["session", "token"]
    credential_id: int


def authenticate_session(
    *,
    uow: UnitOfWork,
    policy: SignInPolicy,
    token: str,
    csrf_token: str | None,
    unsafe: bool,
) -> Authentication:
    """Authenticate a session cookie; `unsafe` requests must also carry the CSRF token.

    Raises:
        NotAuthenticated: no open session, or its user is disabled.
        PermissionDenied: `identity.csrf-failed`.
    """
    session = resolve_session(uow=uow, policy=policy, token=token)
    if unsafe:
        check_csrf(session, csrf_token)
    return Authentication(load_actor(uow=uow, user_id=session.user_id), "session", session.id)


def authenticate_token(*, uow: UnitOfWork, token: str) -> Authentication:
    """Authenticate an `Authorization: Bearer tgm_…` token (no CSRF check: not ambient)."""
    record = resolve_token(uow=uow, token=token)
    return Authentication(load_actor(uow=uow, user_id=record.user_id), "token", record.id)


def load_actor(*, uow: UnitOfWork, user_id: int) -> Actor:
    """Resolve a user's departments (ancestors and subtree precomputed) and roles per app.

    Raises:
        NotAuthenticated: the user is disabled.
    """
    user = uow.users.get(user_id=user_id)
    if user.status != "active":
        raise NotAuthenticated("the account is disabled", code=USER_DISABLED)
    parents = {d.id: d.parent_id for d in uow.departments.list_departments()}
    own = frozenset(uow.departments.list_user_departments(user_id=user_id))
    ancestors = _ancestors(own, parents)
    roles: dict[str, set[str]] = {}
    granted = uow.roles.list_user_roles(user_id=user_id)
    granted += uow.roles.list_department_roles(department_ids=ancestors)
    for role in granted:
        roles.setdefault(role.app or GLOBAL, set()).add(role.key)
    return Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        is_admin=ADMIN_ROLE in roles.get(GLOBAL, set()),
        department_ids=own,
        ancestor_department_ids=ancestors,
        subtree_department_ids=_subtree(own, parents),
        roles=MappingProxyType({app: frozenset(keys) for app, keys in roles.items()}),
    )


def _ancestors(own: frozenset[int], parents: dict[int, int | None]) -> frozenset[int]:
    found: set[int] = set()
    for start in own:
        node: int | None = start
        while node is not None and node not in found:
            found.add(node)
            node = parents.get(node)
    return frozenset(found)


def _subtree(own: frozenset[int], parents: dict[int, int | None]) -> frozenset[int]:
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = list(own)
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(children.get(node, ()))
    return frozenset(found)


def role_specs(*, uow: UnitOfWork, actor: Actor, app: str) -> list[RoleSpec]:
    """The installed `RoleSpec`s of the roles `actor` holds in `app` (for the permission
    compiler: `compile_form_access(actor=actor, app=app, form=…, roles=role_specs(…))`)."""
    from engine.identity.access_loader import load_access_inputs

    return load_access_inputs(uow.conn, app=app, role_keys=actor.role_keys(app), forms=()).roles


__all__ = [
    "Authentication",
    "authenticate_session",
    "authenticate_token",
    "load_actor",
    "role_specs",
]

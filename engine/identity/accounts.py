"""The organisation: users, the department tree and role grants, with every change audited.

Service functions take an open `UnitOfWork` and the acting `Actor` (None: the command line or
`tangram init`); they do not commit, the caller does. Permission to manage the organisation
(admins only) is checked by the caller (`require_admin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import FieldError, NotFoundError, PermissionDenied, SubmissionError
from engine.identity.actor import ADMIN_ROLE, Actor
from engine.identity.passwords import PasswordPolicy, is_acceptable
from engine.labels import Label
from engine.storage.auth import SessionStore
from engine.storage.records import DepartmentRecord, RoleRecord, UserRecord
from engine.storage.uow import UnitOfWork

ROLE_KIND = "roles"
_USER_FIELDS = frozenset({"display_name", "email"})
_DEPARTMENT_FIELDS = frozenset({"name", "parent_id", "head_user_id"})


def require_admin(actor: Actor | None) -> None:
    """Raise PermissionDenied unless `actor` is an admin (None, the command line, passes)."""
    if actor is not None and not actor.is_admin:
        raise PermissionDenied("only administrators manage the organisation")


def _audit(
    uow: UnitOfWork, actor: Actor | None, action: str, kind: str, key: str, **detail: Any
) -> None:
    uow.audit.record(
        action=action,
        target_kind=kind,
        target_key=key,
        actor=None if actor is None else actor.user_id,
        detail=detail,
    )


def _invalid(loc: str, code: str, message: str) -> SubmissionError:
    return SubmissionError([FieldError(loc=loc, code=code, message=message)])


# --- users ---------------------------------------------------------------------------------


def create_user(
    *,
    uow: UnitOfWork,
    actor: Actor | None,
    username: str,
    display_name: str,
    policy: PasswordPolicy,
    email: str | None = None,
    password: str | None = None,
) -> UserRecord:
    """Create an active user; without a password it cannot sign in until one is set."""
    if password is not None and not is_acceptable(password):
        raise _invalid("password", "identity.weak-password", "the password is too short")
    user = uow.users.create(
        username=username,
        display_name=display_name,
        email=email,
        password_hash=None if password is None else policy.hash(password),
    )
    _audit(uow, actor, "user.create", "user", username)
    return user


def update_user(
    *, uow: UnitOfWork, actor: Actor | None, user_id: int, changes: Mapping[str, Any]
) -> UserRecord:
    """Change a user's display name or email."""
    values = {k: v for k, v in changes.items() if k in _USER_FIELDS}
    if not values:
        return uow.users.get(user_id=user_id)
    user = uow.users.update(user_id=user_id, **values)
    _audit(uow, actor, "user.update", "user", user.username, changes=sorted(values))
    return user


def set_user_active(
    *, uow: UnitOfWork, actor: Actor | None, user_id: int, active: bool
) -> UserRecord:
    """Enable or disable a user; disabling ends their sessions (tokens stop working too)."""
    if actor is not None and actor.user_id == user_id and not active:
        raise PermissionDenied("you cannot disable yourself", code="identity.self-disable")
    user = uow.users.update(user_id=user_id, status="active" if active else "disabled")
    if not active:
        SessionStore(uow.conn, clock=uow.clock).end_all(user_id=user_id)
    _audit(uow, actor, "user.enable" if active else "user.disable", "user", user.username)
    return user


def set_password(
    *, uow: UnitOfWork, actor: Actor | None, user_id: int, password: str, policy: PasswordPolicy
) -> UserRecord:
    """Set a user's password and end their other sessions."""
    if not is_acceptable(password):
        raise _invalid("password", "identity.weak-password", "the password is too short")
    user = uow.users.update(user_id=user_id, password_hash=policy.hash(password))
    SessionStore(uow.conn, clock=uow.clock).end_all(user_id=user_id)
    _audit(uow, actor, "user.password", "user", user.username)
    return user


# --- departments ---------------------------------------------------------------------------


def create_department(
    *,
    uow: UnitOfWork,
    actor: Actor | None,
    key: str,
    name: Label,
    parent_id: int | None = None,
    head_user_id: int | None = None,
) -> DepartmentRecord:
    if parent_id is not None:
        uow.departments.get(department_id=parent_id)
    department = uow.departments.create(
        key=key, name=name, parent_id=parent_id, head_user_id=head_user_id
    )
    _audit(uow, actor, "department.create", "department", key, parent_id=parent_id)
    return department


def update_department(
    *, uow: UnitOfWork, actor: Actor | None, department_id: int, changes: Mapping[str, Any]
) -> DepartmentRecord:
    """Rename, move (`parent_id`, None: to the top) or change the head of a department."""
    values = {k: v for k, v in changes.items() if k in _DEPARTMENT_FIELDS}
    current = uow.departments.get(department_id=department_id)
    if values.get("parent_id") is not None:
        _check_move(uow, department_id, int(values["parent_id"]))
    if not values:
        return current
    department = uow.departments.update(department_id=department_id, **values)
    _audit(uow, actor, "department.update", "department", current.key, changes=dict(values))
    return department


def _check_move(uow: UnitOfWork, department_id: int, parent_id: int) -> None:
    parents = {d.id: d.parent_id for d in uow.departments.list_departments()}
    if parent_id not in parents:
        raise NotFoundError(f"department {parent_id} does not exist", code="identity.no-department")
    node: int | None = parent_id
    while node is not None:
        if node == department_id:
            raise _invalid(
                "parent_id", "identity.department-cycle", "a department cannot move below itself"
            )
        node = parents.get(node)


def set_membership(
    *, uow: UnitOfWork, actor: Actor | None, department_id: int, user_id: int, member: bool
) -> None:
    """Add a user to a department or remove them from it."""
    department = uow.departments.get(department_id=department_id)
    user = uow.users.get(user_id=user_id)
    if member:
        uow.departments.add_member(department_id=department_id, user_id=user_id)
    elif not uow.departments.remove_member(department_id=department_id, user_id=user_id):
        return
    action = "department.add-member" if member else "department.remove-member"
    _audit(uow, actor, action, "department", department.key, user=user.username)


# --- roles and grants ----------------------------------------------------------------------


def list_role_definitions(*, uow: UnitOfWork, app: str | None = None) -> list[tuple[str, str]]:
    """(app, role key) of every installed role definition, plus ("", "admin")."""
    found = [("", ADMIN_ROLE)]
    found += [(d.app, d.key) for d in uow.definitions.list_definitions(app=app, kind=ROLE_KIND)]
    return found


def _role_row(uow: UnitOfWork, app: str | None, key: str) -> RoleRecord:
    """The `roles` row of a grantable role, created on first grant."""
    if app is None:
        if key != ADMIN_ROLE:
            raise NotFoundError(f"global role {key!r} does not exist", code="identity.no-role")
        label: Label = "Administrator"
    else:
        installed = {d.key for d in uow.definitions.list_definitions(app=app, kind=ROLE_KIND)}
        if key not in installed:
            raise NotFoundError(f"role {app}.{key} is not installed", code="identity.no-role")
        body = uow.definitions.get_current(app=app, kind=ROLE_KIND, key=key).body
        label = body.get("label", key)
    return uow.roles.find(app=app, key=key) or uow.roles.create(key=key, label=label, app=app)


def grant_role(
    *,
    uow: UnitOfWork,
    actor: Actor | None,
    app: str | None,
    role: str,
    user_id: int | None = None,
    department_id: int | None = None,
) -> None:
    """Grant an app role (app None: the global `admin` role) to a user or a department.

    A department grant reaches its members and the members of every department below it.
    """
    target = _grantee(uow, user_id, department_id)
    record = _role_row(uow, app, role)
    if user_id is not None:
        uow.roles.assign(role_id=record.id, user_id=user_id)
    else:
        uow.roles.assign_department(role_id=record.id, department_id=int(department_id or 0))
    _audit(uow, actor, "role.grant", "role", _role_name(app, role), grantee=target)


def revoke_role(
    *,
    uow: UnitOfWork,
    actor: Actor | None,
    app: str | None,
    role: str,
    user_id: int | None = None,
    department_id: int | None = None,
) -> bool:
    """Remove a grant; False when there was none."""
    target = _grantee(uow, user_id, department_id)
    if actor is not None and user_id == actor.user_id and app is None and role == ADMIN_ROLE:
        raise PermissionDenied("you cannot revoke your own admin role", code="identity.self-revoke")
    record = uow.roles.find(app=app, key=role)
    if record is None:
        return False
    if user_id is not None:
        done = uow.roles.unassign(role_id=record.id, user_id=user_id)
    else:
        done = uow.roles.unassign_department(
            role_id=record.id, department_id=int(department_id or 0)
        )
    if done:
        _audit(uow, actor, "role.revoke", "role", _role_name(app, role), grantee=target)
    return done


def _grantee(uow: UnitOfWork, user_id: int | None, department_id: int | None) -> str:
    if (user_id is None) == (department_id is None):
        raise _invalid("grantee", "identity.grantee", "give exactly one of user or department")
    if user_id is not None:
        return f"user:{uow.users.get(user_id=user_id).username}"
    return f"department:{uow.departments.get(department_id=int(department_id or 0)).key}"


def _role_name(app: str | None, role: str) -> str:
    return role if app is None else f"{app}.{role}"


__all__ = [
    "ROLE_KIND",
    "create_department",
    "create_user",
    "grant_role",
    "list_role_definitions",
    "require_admin",
    "revoke_role",
    "set_membership",
    "set_password",
    "set_user_active",
    "update_department",
    "update_user",
]

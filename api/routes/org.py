"""The organisation over HTTP (admins only): users, departments, members and role grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.security import AdminActorDep, sign_in_policy
from engine.identity import accounts
from engine.identity.actor import Actor
from engine.labels import Label
from engine.storage.records import DepartmentRecord, UserRecord
from engine.storage.uow import UnitOfWork

router = APIRouter(prefix="/org", tags=["organisation"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=254)
    password: str | None = Field(None, max_length=1024)


class UserPatch(BaseModel):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, max_length=254)
    active: bool | None = None


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    active: bool
    has_password: bool
    created_at: datetime

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            active=user.status == "active",
            has_password=user.password_hash is not None,
            created_at=user.created_at,
        )


class DepartmentIn(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: Label
    parent_id: int | None = None
    head_user_id: int | None = None


class DepartmentPatch(BaseModel):
    """Only the keys sent change; `parent_id: null` moves the department to the top."""

    name: Label | None = None
    parent_id: int | None = None
    head_user_id: int | None = None


class DepartmentOut(BaseModel):
    id: int
    key: str
    name: Label
    parent_id: int | None
    head_user_id: int | None
    members: list[int]

    @classmethod
    def of(cls, department: DepartmentRecord, members: list[int]) -> DepartmentOut:
        return cls(
            id=department.id,
            key=department.key,
            name=department.name,
            parent_id=department.parent_id,
            head_user_id=department.head_user_id,
            members=members,
        )


class GrantIn(BaseModel):
    """A role of an app (app null: the global `admin` role) for a user or a department."""

    app: str | None = None
    role: str
    user_id: int | None = None
    department_id: int | None = None


class RoleOut(BaseModel):
    app: str
    key: str
    users: list[int]
    departments: list[int]


@router.get("/users", response_model=list[UserOut])
def list_users(actor: AdminActorDep, db: DatabaseDep) -> list[UserOut]:
    with UnitOfWork(db) as uow:
        return [UserOut.of(u) for u in uow.users.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, request: Request, actor: AdminActorDep, db: DatabaseDep) -> UserOut:
    with UnitOfWork(db) as uow:
        user = accounts.create_user(
            uow=uow,
            actor=actor,
            username=body.username,
            display_name=body.display_name,
            email=body.email,
            password=body.password,
            policy=sign_in_policy(request).passwords,
        )
        uow.commit()
    return UserOut.of(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserPatch, actor: AdminActorDep, db: DatabaseDep) -> UserOut:
    """Change the display name or email, or enable/disable (`active`) the user."""
    changes = body.model_dump(exclude_unset=True)
    with UnitOfWork(db) as uow:
        user = accounts.update_user(uow=uow, actor=actor, user_id=user_id, changes=changes)
        if changes.get("active") is not None:
            user = accounts.set_user_active(
                uow=uow, actor=actor, user_id=user_id, active=bool(changes["active"])
            )
        uow.commit()
    return UserOut.of(user)


@router.put("/users/{user_id}/password", status_code=204)
def set_password(
    user_id: int, body: PasswordIn, request: Request, actor: AdminActorDep, db: DatabaseDep
) -> Response:
    """Set a user's password; their open sessions end."""
    with UnitOfWork(db) as uow:
        accounts.set_password(
            uow=uow,
            actor=actor,
            user_id=user_id,
            password=body.password,
            policy=sign_in_policy(request).passwords,
        )
        uow.commit()
    return Response(status_code=204)


@router.get("/departments", response_model=list[DepartmentOut])
def list_departments(actor: AdminActorDep, db: DatabaseDep) -> list[DepartmentOut]:
    with UnitOfWork(db) as uow:
        return [
            DepartmentOut.of(d, uow.departments.list_members(department_id=d.id))
            for d in uow.departments.list_departments()
        ]


@router.post("/departments", response_model=DepartmentOut, status_code=201)
def create_department(body: DepartmentIn, actor: AdminActorDep, db: DatabaseDep) -> DepartmentOut:
    with UnitOfWork(db) as uow:
        department = accounts.create_department(uow=uow, actor=actor, **body.model_dump())
        uow.commit()
    return DepartmentOut.of(department, [])


@router.patch("/departments/{department_id}", response_model=DepartmentOut)
def update_department(
    department_id: int, body: DepartmentPatch, actor: AdminActorDep, db: DatabaseDep
) -> DepartmentOut:
    """Rename, move (no cycles: 422 `identity.department-cycle`) or change the head."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    with UnitOfWork(db) as uow:
        department = accounts.update_department(
            uow=uow, actor=actor, department_id=department_id, changes=changes
        )
        members = uow.departments.list_members(department_id=department_id)
        uow.commit()
    return DepartmentOut.of(department, members)


@router.put("/departments/{department_id}/members/{user_id}", status_code=204)
def add_member(department_id: int, user_id: int, actor: AdminActorDep, db: DatabaseDep) -> Response:
    return _membership(db, actor, department_id, user_id, member=True)


@router.delete("/departments/{department_id}/members/{user_id}", status_code=204)
def remove_member(
    department_id: int, user_id: int, actor: AdminActorDep, db: DatabaseDep
) -> Response:
    return _membership(db, actor, department_id, user_id, member=False)


def _membership(
    db: sa.Engine, actor: Actor, department_id: int, user_id: int, *, member: bool
) -> Response:
    with UnitOfWork(db) as uow:
        if member and user_id in uow.departments.list_members(department_id=department_id):
            return Response(status_code=204)
        accounts.set_membership(
            uow=uow, actor=actor, department_id=department_id, user_id=user_id, member=member
        )
        uow.commit()
    return Response(status_code=204)


@router.get("/roles", response_model=list[RoleOut])
def list_roles(actor: AdminActorDep, db: DatabaseDep) -> list[RoleOut]:
    """Installed roles (and the global `admin`) with the users and departments holding them."""
    with UnitOfWork(db) as uow:
        out = {
            key: RoleOut(app=key[0], key=key[1], users=[], departments=[])
            for key in accounts.list_role_definitions(uow=uow)
        }
        for role, kind, grantee in uow.roles.list_grants():
            entry = out.get((role.app or "", role.key))
            if entry is not None:
                (entry.users if kind == "user" else entry.departments).append(grantee)
    return list(out.values())


@router.post("/grants", status_code=204)
def grant(body: GrantIn, actor: AdminActorDep, db: DatabaseDep) -> Response:
    """Grant a role; granting one already held is a 409 `storage.conflict`."""
    with UnitOfWork(db) as uow:
        accounts.grant_role(uow=uow, actor=actor, **body.model_dump())
        uow.commit()
    return Response(status_code=204)


@router.post("/grants/revoke", status_code=204)
def revoke(body: GrantIn, actor: AdminActorDep, db: DatabaseDep) -> Response:
    with UnitOfWork(db) as uow:
        accounts.revoke_role(uow=uow, actor=actor, **body.model_dump())
        uow.commit()
    return Response(status_code=204)


__all__ = ["router"]

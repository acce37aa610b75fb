"""Users, departments and roles: the minimum `tangram init` and the permission engine build on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.labels import Label
from engine.storage.conflicts import translating_conflicts
from engine.storage.records import DepartmentRecord, RoleRecord, UserRecord
from engine.storage.sqltypes import utc_now
from engine.storage.tables import (
    department_roles,
    departments,
    roles,
    user_departments,
    user_roles,
    users,
)

Clock = Callable[[], datetime]


class UserStore:
    """Accounts. Passwords arrive already hashed (argon2 lives in the identity engine)."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(
        self,
        *,
        username: str,
        display_name: str,
        email: str | None = None,
        password_hash: str | None = None,
        status: str = "active",
    ) -> UserRecord:
        now = self._clock()
        with translating_conflicts():
            result = self._conn.execute(
                sa.insert(users)
                .values(
                    username=username,
                    display_name=display_name,
                    email=email,
                    password_hash=password_hash,
                    status=status,
                    created_at=now,
                    updated_at=now,
                )
                .returning(users.c.id)
            )
        return self.get(user_id=int(result.scalar_one()))

    def get(self, *, user_id: int) -> UserRecord:
        return self._one(users.c.id == user_id, f"user {user_id}")

    def get_by_username(self, *, username: str) -> UserRecord:
        return self._one(users.c.username == username, f"user {username!r}")

    def find_by_username(self, *, username: str) -> UserRecord | None:
        row = self._conn.execute(_users_query().where(users.c.username == username)).one_or_none()
        return None if row is None else UserRecord(**row._mapping)

    def list_users(self) -> list[UserRecord]:
        rows = self._conn.execute(_users_query().order_by(users.c.username))
        return [UserRecord(**row._mapping) for row in rows]

    def update(self, *, user_id: int, **values: object) -> UserRecord:
        """Change some of display_name, email, status, password_hash; bumps the version."""
        unknown = set(values) - {"display_name", "email", "status", "password_hash"}
        if unknown:
            raise TypeError(f"not user columns: {sorted(unknown)}")
        with translating_conflicts():
            result = self._conn.execute(
                sa.update(users)
                .where(users.c.id == user_id)
                .values(**values, updated_at=self._clock(), version=users.c.version + 1)
            )
        if result.rowcount != 1:
            raise NotFoundError(f"user {user_id} does not exist", code="storage.user-not-found")
        return self.get(user_id=user_id)

    def _one(self, where: sa.ColumnElement[bool], what: str) -> UserRecord:
        row = self._conn.execute(_users_query().where(where)).one_or_none()
        if row is None:
            raise NotFoundError(f"{what} does not exist", code="storage.user-not-found")
        return UserRecord(**row._mapping)


class DepartmentStore:
    """The department tree and who belongs where."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(
        self,
        *,
        key: str,
        name: Label,
        parent_id: int | None = None,
        head_user_id: int | None = None,
    ) -> DepartmentRecord:
        values = {"key": key, "name": name, "parent_id": parent_id, "head_user_id": head_user_id}
        with translating_conflicts():
            result = self._conn.execute(
                sa.insert(departments)
                .values(**values, created_at=self._clock())
                .returning(departments.c.id, departments.c.version)
            )
        row = result.one()
        return DepartmentRecord(
            id=row.id,
            key=key,
            name=name,
            parent_id=parent_id,
            head_user_id=head_user_id,
            version=row.version,
        )

    def list_departments(self) -> list[DepartmentRecord]:
        query = sa.select(*_DEPARTMENT_COLUMNS).order_by(departments.c.key)
        return [DepartmentRecord(**row._mapping) for row in self._conn.execute(query)]

    def get(self, *, department_id: int) -> DepartmentRecord:
        query = sa.select(*_DEPARTMENT_COLUMNS).where(departments.c.id == department_id)
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError(
                f"department {department_id} does not exist", code="storage.department-not-found"
            )
        return DepartmentRecord(**row._mapping)

    def find_by_key(self, *, key: str) -> DepartmentRecord | None:
        query = sa.select(*_DEPARTMENT_COLUMNS).where(departments.c.key == key)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else DepartmentRecord(**row._mapping)

    def update(self, *, department_id: int, **values: object) -> DepartmentRecord:
        """Change some of name, parent_id, head_user_id (the caller checks for cycles)."""
        unknown = set(values) - {"name", "parent_id", "head_user_id"}
        if unknown:
            raise TypeError(f"not department columns: {sorted(unknown)}")
        with translating_conflicts():
            self._conn.execute(
                sa.update(departments)
                .where(departments.c.id == department_id)
                .values(**values, version=departments.c.version + 1)
            )
        return self.get(department_id=department_id)

    def remove_member(self, *, department_id: int, user_id: int) -> bool:
        result = self._conn.execute(
            sa.delete(user_departments).where(
                user_departments.c.department_id == department_id,
                user_departments.c.user_id == user_id,
            )
        )
        return result.rowcount > 0

    def list_user_departments(self, *, user_id: int) -> list[int]:
        query = (
            sa.select(user_departments.c.department_id)
            .where(user_departments.c.user_id == user_id)
            .order_by(user_departments.c.department_id)
        )
        return list(self._conn.execute(query).scalars())

    def add_member(self, *, department_id: int, user_id: int, is_primary: bool = False) -> None:
        with translating_conflicts():
            self._conn.execute(
                sa.insert(user_departments).values(
                    department_id=department_id, user_id=user_id, is_primary=is_primary
                )
            )

    def list_members(self, *, department_id: int) -> list[int]:
        query = (
            sa.select(user_departments.c.user_id)
            .where(user_departments.c.department_id == department_id)
            .order_by(user_departments.c.user_id)
        )
        return list(self._conn.execute(query).scalars())


class RoleStore:
    """Roles, global (`app` None) or per app, and their members."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def create(self, *, key: str, label: Label, app: str | None = None) -> RoleRecord:
        with translating_conflicts():
            result = self._conn.execute(
                sa.insert(roles)
                .values(app=app, key=key, label=label, created_at=self._clock())
                .returning(roles.c.id, roles.c.version)
            )
        row = result.one()
        return RoleRecord(id=row.id, app=app, key=key, label=label, version=row.version)

    def list_roles(self, *, app: str | None = None) -> list[RoleRecord]:
        """Global roles and, when `app` is given, that app's roles."""
        query = sa.select(*_ROLE_COLUMNS).order_by(
            roles.c.app.is_not(None), roles.c.app, roles.c.key
        )
        scope = (
            roles.c.app.is_(None)
            if app is None
            else sa.or_(roles.c.app.is_(None), roles.c.app == app)
        )
        return [RoleRecord(**row._mapping) for row in self._conn.execute(query.where(scope))]

    def assign(self, *, role_id: int, user_id: int) -> None:
        with translating_conflicts():
            self._conn.execute(sa.insert(user_roles).values(role_id=role_id, user_id=user_id))

    def find(self, *, app: str | None, key: str) -> RoleRecord | None:
        app_is = roles.c.app.is_(None) if app is None else roles.c.app == app
        query = sa.select(*_ROLE_COLUMNS).where(app_is, roles.c.key == key)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else RoleRecord(**row._mapping)

    def unassign(self, *, role_id: int, user_id: int) -> bool:
        result = self._conn.execute(
            sa.delete(user_roles).where(
                user_roles.c.role_id == role_id, user_roles.c.user_id == user_id
            )
        )
        return result.rowcount > 0

    def assign_department(self, *, role_id: int, department_id: int) -> None:
        with translating_conflicts():
            self._conn.execute(
                sa.insert(department_roles).values(role_id=role_id, department_id=department_id)
            )

    def unassign_department(self, *, role_id: int, department_id: int) -> bool:
        result = self._conn.execute(
            sa.delete(department_roles).where(
                department_roles.c.role_id == role_id,
                department_roles.c.department_id == department_id,
            )
        )
        return result.rowcount > 0

    def list_department_roles(self, *, department_ids: Iterable[int]) -> list[RoleRecord]:
        """Roles granted to any of `department_ids`, each once."""
        granted = sa.select(department_roles.c.role_id).where(
            department_roles.c.department_id.in_(list(department_ids))
        )
        query = sa.select(*_ROLE_COLUMNS).where(roles.c.id.in_(granted)).order_by(roles.c.id)
        return [RoleRecord(**row._mapping) for row in self._conn.execute(query)]

    def list_grants(self) -> list[tuple[RoleRecord, str, int]]:
        """Every grant as (role, "user" or "department", grantee id)."""
        users_q = sa.select(
            *_ROLE_COLUMNS, sa.literal("user").label("grantee_kind"), user_roles.c.user_id
        ).join(user_roles, user_roles.c.role_id == roles.c.id)
        depts_q = sa.select(
            *_ROLE_COLUMNS,
            sa.literal("department").label("grantee_kind"),
            department_roles.c.department_id,
        ).join(department_roles, department_roles.c.role_id == roles.c.id)
        grants = []
        for query in (users_q, depts_q):
            for row in self._conn.execute(query.order_by(roles.c.id)):
                values = tuple(row)
                role = RoleRecord(*values[: len(_ROLE_COLUMNS)])
                grants.append((role, str(values[-2]), int(values[-1])))
        return grants

    def list_user_roles(self, *, user_id: int) -> list[RoleRecord]:
        query = (
            sa.select(*_ROLE_COLUMNS)
            .join(user_roles, user_roles.c.role_id == roles.c.id)
            .where(user_roles.c.user_id == user_id)
            .order_by(roles.c.id)
        )
        return [RoleRecord(**row._mapping) for row in self._conn.execute(query)]


def _users_query() -> sa.Select[tuple[object, ...]]:
    return sa.select(*(c for c in users.c if c.name != "updated_at"))


_DEPARTMENT_COLUMNS = tuple(c for c in departments.c if c.name != "created_at")
_ROLE_COLUMNS = tuple(c for c in roles.c if c.name != "created_at")

__all__ = ["DepartmentStore", "RoleStore", "UserStore"]

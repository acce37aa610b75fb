"""Users, departments and roles: the minimum `tangram init` and the permission engine build on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.labels import Label
from engine.storage.conflicts import translating_conflicts
from engine.storage.records import DepartmentRecord, RoleRecord, UserRecord
from engine.storage.sqltypes import utc_now
from engine.storage.tables import departments, roles, user_departments, user_roles, users

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

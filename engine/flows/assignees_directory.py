"""The directory as assignee rules read it: role holders, department members and heads, the
department tree, and which users are active."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from engine.storage.tables import (
    department_roles,
    departments,
    roles,
    user_departments,
    user_roles,
    users,
)


def role_members(conn: sa.Connection, *, app: str, key: str) -> list[int]:
    """Users holding role `key` of `app` (or the global role of that key when the app has none),
    directly or through a department grant (which reaches sub-departments)."""
    found = conn.execute(
        sa.select(roles.c.id).where(roles.c.key == key, roles.c.app == app)
    ).scalar_one_or_none()
    if found is None:
        found = conn.execute(
            sa.select(roles.c.id).where(roles.c.key == key, roles.c.app.is_(None))
        ).scalar_one_or_none()
    if found is None:
        return []
    direct = conn.execute(sa.select(user_roles.c.user_id).where(user_roles.c.role_id == found))
    granted = conn.execute(
        sa.select(department_roles.c.department_id).where(department_roles.c.role_id == found)
    )
    return sorted(set(direct.scalars()) | set(members(conn, subtree(conn, granted.scalars()))))


def primary_department(conn: sa.Connection, user_id: int) -> int | None:
    """The user's primary department, else the first one they belong to."""
    query = (
        sa.select(user_departments.c.department_id)
        .where(user_departments.c.user_id == user_id)
        .order_by(user_departments.c.is_primary.desc(), user_departments.c.department_id)
        .limit(1)
    )
    return conn.execute(query).scalar_one_or_none()


def department_id(conn: sa.Connection, key: str) -> int | None:
    query = sa.select(departments.c.id).where(departments.c.key == key)
    return conn.execute(query).scalar_one_or_none()


def members(conn: sa.Connection, department_ids: Iterable[int]) -> list[int]:
    query = sa.select(user_departments.c.user_id).where(
        user_departments.c.department_id.in_(list(department_ids))
    )
    return sorted(set(conn.execute(query).scalars()))


def subtree(conn: sa.Connection, roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for row in conn.execute(_DEPT_TREE):
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row.id)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(children.get(node, ()))
    return found


def active_only(conn: sa.Connection, user_ids: Sequence[int]) -> list[int]:
    """`user_ids` without disabled or unknown users, first occurrence order kept."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    query = sa.select(users.c.id).where(users.c.id.in_(wanted), users.c.status == "active")
    active = set(conn.execute(query).scalars())
    return [user for user in wanted if user in active]


_DEPT_TREE = sa.select(departments.c.id, departments.c.parent_id, departments.c.head_user_id)


def department_tree(conn: sa.Connection) -> dict[int, tuple[int | None, int | None]]:
    """Every department's (parent id, head user id)."""
    return {row.id: (row.parent_id, row.head_user_id) for row in conn.execute(_DEPT_TREE)}


__all__ = [
    "active_only",
    "department_id",
    "department_tree",
    "members",
    "primary_department",
    "role_members",
    "subtree",
]

"""Who a scheduled report message goes to: users named by username, and the members of roles
of the app (directly or through a department), active ones only."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from engine.storage.tables import department_roles, roles, user_departments, user_roles, users


def find_recipients(
    conn: sa.Connection, *, app: str, usernames: Iterable[str], roles: Iterable[str]
) -> list[int]:
    """Ids of the active users named in `usernames` or holding one of `roles` of `app`."""
    names, role_keys = tuple(usernames), tuple(roles)
    found: set[int] = set()
    if names:
        query = sa.select(users.c.id).where(users.c.username.in_(names))
        found.update(int(i) for i in conn.execute(query).scalars())
    if role_keys:
        found.update(_role_members(conn, app, role_keys))
    if not found:
        return []
    active = sa.select(users.c.id).where(users.c.id.in_(found), users.c.status == "active")
    return sorted(int(i) for i in conn.execute(active).scalars())


def _role_members(conn: sa.Connection, app: str, keys: tuple[str, ...]) -> set[int]:
    role_ids = sa.select(roles.c.id).where(roles.c.app == app, roles.c.key.in_(keys))
    direct = sa.select(user_roles.c.user_id).where(user_roles.c.role_id.in_(role_ids))
    departments = sa.select(department_roles.c.department_id).where(
        department_roles.c.role_id.in_(role_ids)
    )
    members = sa.select(user_departments.c.user_id).where(
        user_departments.c.department_id.in_(departments)
    )
    found = {int(i) for i in conn.execute(direct).scalars()}
    return found | {int(i) for i in conn.execute(members).scalars()}


__all__ = ["find_recipients"]

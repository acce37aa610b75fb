"""Who asks for records, and what the permission compiler lets them reach (docs/permissions.md).

The record services take a `Who`: an `Actor` (a signed-in user: their roles apply) or, for
trusted internal callers (the CLI, flows, tests), a bare user id or None, which act with every
permission. The helpers here compile one `FormAccess` per request and apply its scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, admin_access, compile_form_access
from engine.identity.service import role_specs
from engine.storage.permission_sql import scope_conditions
from engine.storage.uow import UnitOfWork

Who = Actor | int | None
RECORD_NOT_FOUND = "record.not-found"


def user_id_of(who: Who) -> int | None:
    """The user id that writes record metadata (created_by, owner_id, history)."""
    return who.user_id if isinstance(who, Actor) else who


def departments_of(who: Who) -> tuple[int, ...]:
    """The actor's own departments, sorted, for `EvalContext.departments`."""
    return tuple(sorted(who.department_ids)) if isinstance(who, Actor) else ()


def form_access(*, uow: UnitOfWork, who: Who, app: str, form: str) -> FormAccess:
    """The actor's access to `app.form`; internal callers get every permission."""
    return form_accesses(uow=uow, who=who, app=app, forms=[form])[form]


def form_accesses(
    *, uow: UnitOfWork, who: Who, app: str, forms: Iterable[str]
) -> dict[str, FormAccess]:
    """The actor's access to each of `forms` of `app` (the roles are read once)."""
    if not isinstance(who, Actor):
        return {form: admin_access(app=app, form=form) for form in forms}
    roles = [] if who.is_admin else role_specs(uow=uow, actor=who, app=app)
    return {form: compile_form_access(actor=who, app=app, form=form, roles=roles) for form in forms}


def ids_in_scope(
    conn: sa.Connection,
    access: FormAccess,
    table: sa.Table,
    record_ids: Iterable[int],
    *,
    who: Who,
    now: datetime,
    action: str = "read",
    include_deleted: bool = False,
) -> frozenset[int]:
    """The ids among `record_ids` that exist and `action` reaches (deleted ones on request)."""
    ids = sorted(set(record_ids))
    if not ids or not access.can(action):
        return frozenset()
    where: list[sa.ColumnElement[bool]] = [table.c.id.in_(sa.bindparam(None, ids, expanding=True))]
    if not include_deleted:
        where.append(table.c.deleted_at.is_(None))
    if isinstance(who, Actor) and not access.is_unrestricted(action):
        dialect = conn.dialect.name
        where += scope_conditions(access, table, actor=who, dialect=dialect, now=now, action=action)
    return frozenset(conn.execute(sa.select(table.c.id).where(*where)).scalars())


def require_in_scope(
    conn: sa.Connection,
    access: FormAccess,
    table: sa.Table,
    record_id: int,
    *,
    who: Who,
    now: datetime,
    action: str = "read",
    include_deleted: bool = False,
) -> None:
    """`NotFoundError` (404 `record.not-found`) unless `action` reaches the record."""
    found = ids_in_scope(
        conn,
        access,
        table,
        [record_id],
        who=who,
        now=now,
        action=action,
        include_deleted=include_deleted,
    )
    if record_id not in found:
        raise NotFoundError(f"record {record_id} not found", code=RECORD_NOT_FOUND)


def read_scope(
    conn: sa.Connection, access: FormAccess, table: sa.Table, *, who: Who, now: datetime
) -> list[sa.ColumnElement[bool]]:
    """The conditions of the read scope for `table` (empty for unrestricted reads)."""
    if not isinstance(who, Actor) or access.is_unrestricted("read"):
        return []
    dialect = conn.dialect.name
    return scope_conditions(access, table, actor=who, dialect=dialect, now=now, action="read")


__all__ = [
    "RECORD_NOT_FOUND",
    "Who",
    "departments_of",
    "form_access",
    "form_accesses",
    "ids_in_scope",
    "read_scope",
    "require_in_scope",
    "user_id_of",
]

"""Who asks for records, and what the permission compiler lets them reach (docs/permissions.md).

The record services take a `Who`: an `Actor` (a signed-in user: their roles apply) or, for
trusted internal callers (the CLI, flows, tests), a bare user id or None, which act with every
permission. The helpers here compile one `FormAccess` per request and apply its scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.identity.access_loader import load_access_inputs
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, admin_access, compile_form_access
from engine.identity.related_access import LazyAccesses, checked, with_related
from engine.storage.form_records import RecordLayout, StoredRecord
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
    """The actor's access to each of `forms` of `app` (the roles are read once).

    For a restricted actor each access also governs the form's relations and lookups: what
    they show of the related records follows the actor's access to the target form
    (`engine.identity.related_access`).
    """
    if not isinstance(who, Actor) or who.is_admin:
        return {form: admin_access(app=app, form=form) for form in forms}
    loaded = load_access_inputs(uow.conn, app=app, role_keys=who.role_keys(app), forms=forms)
    compiled: dict[str, FormAccess] = {}

    def access_of(form: str) -> FormAccess:
        if form not in compiled:
            roles = loaded.roles
            compiled[form] = compile_form_access(actor=who, app=app, form=form, roles=roles)
        return compiled[form]

    out: dict[str, FormAccess] = {}
    for form, links in loaded.links.items():
        targets = LazyAccesses(links.targets, access_of)
        out[form] = with_related(access_of(form), links, targets)
    return out


def check_lookups(
    conn: sa.Connection,
    access: FormAccess,
    layout: RecordLayout,
    records: Sequence[StoredRecord],
    *,
    who: Who,
    now: datetime,
) -> tuple[list[StoredRecord], FormAccess]:
    """`records` with the lookups of related records outside the actor's scope set to null.

    One query per target form whose read scope is restricted (the target's scope condition
    over the relation ids of all `records`), not a check per row. Returns the records and the
    access to serialise them with: it no longer nulls the checked lookups.
    """
    if not access.scoped_lookups or not records:
        return list(records), checked(access)
    by_relation: dict[str, list[str]] = {}
    for lookup, relation in access.scoped_lookups.items():
        by_relation.setdefault(relation, []).append(lookup)
    masked: dict[int, set[str]] = {}
    for relation, lookups in by_relation.items():
        target = access.related[relation]
        tables = layout.tables.get(target.form)
        pointed = {r.id: r.values.get(relation) for r in records}
        ids = {v for v in pointed.values() if isinstance(v, int) and not isinstance(v, bool)}
        reached = (
            ids_in_scope(conn, target, tables.main, ids, who=who, now=now)
            if tables is not None and ids
            else frozenset()
        )
        for record_id, value in pointed.items():
            if value not in reached:
                masked.setdefault(record_id, set()).update(lookups)
    out = [
        replace(r, values={k: None if k in masked[r.id] else v for k, v in r.values.items()})
        if r.id in masked
        else r
        for r in records
    ]
    return out, checked(access)


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
    "check_lookups",
    "departments_of",
    "form_access",
    "form_accesses",
    "ids_in_scope",
    "read_scope",
    "require_in_scope",
    "user_id_of",
]

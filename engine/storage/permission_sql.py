"""The permission compiler, SQL half: a `FormAccess` as WHERE conditions and SELECT lists.

Every value reaches the database as a bound parameter, and the record's columns are compared
bare (`owner_id = :uid`, `owner_id = ANY(ARRAY(SELECT …))`), so the indexes on them serve the
scope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, NotFoundError, Problem
from engine.expr import Expression, ExpressionError, compile_filter
from engine.expr.nodes import Binary, Call, Literal, Membership, Node, Ref, Unary
from engine.identity.permissions import (
    BAD_ASSIGNED_FIELD,
    BAD_SCOPE_EXPR,
    ActorLike,
    FormAccess,
    ScopeTerm,
)
from engine.storage.form_tables import SYSTEM_COLUMNS
from engine.storage.tables import user_departments

Sql = ColumnElement[Any]
# List variables of scope expressions: usable only inside `x in (...)`, where they expand.
LIST_VARIABLES = ("$user.departments", "$user.department_tree")


def scope_condition(
    access: FormAccess,
    table: sa.Table,
    *,
    actor: ActorLike,
    dialect: str,
    now: datetime,
    action: str = "read",
) -> ColumnElement[bool] | None:
    """The rows of `table` that `action` reaches, or None when it reaches every row.

    An action the actor does not have reaches nothing (`false`).

    Raises:
        DefinitionError: `identity.bad-scope-expr` when a scope expression does not compile
            against `table` (an unknown field, not a condition).
    """
    terms = access.scope(action)
    if access.is_unrestricted(action):
        return None
    if any(term.kind == "expr" for term in terms):
        conditions = [_term(term, table, actor, dialect, now) for term in terms]
        return sa.or_(sa.false(), *conditions)
    departments = frozenset(actor.department_ids)
    subtree = frozenset(actor.subtree_department_ids)
    return _fixed_condition(terms, table, dialect, actor.user_id, departments, subtree)


@lru_cache(maxsize=2048)
def _fixed_condition(
    terms: tuple[ScopeTerm, ...],
    table: sa.Table,
    dialect: str,
    user_id: int | None,
    departments: frozenset[int],
    subtree: frozenset[int],
) -> ColumnElement[bool]:
    # Without an expression the condition depends only on these values, and SQLAlchemy
    # clauses are immutable: requests of the same user (or department) share one, which saves
    # building it (a third of a short list request) each time.
    actor = _Values(user_id, departments, subtree)
    conditions = [_term(term, table, actor, dialect, _NO_CLOCK) for term in terms]
    return sa.or_(sa.false(), *conditions)


@dataclass(frozen=True, slots=True)
class _Values:
    user_id: int | None
    department_ids: frozenset[int]
    subtree_department_ids: frozenset[int]
    is_admin: bool = False


_NO_CLOCK = datetime(1970, 1, 1, tzinfo=UTC)  # terms other than expr never read the clock


def scope_conditions(
    access: FormAccess,
    table: sa.Table,
    *,
    actor: ActorLike,
    dialect: str,
    now: datetime,
    action: str = "read",
) -> list[ColumnElement[bool]]:
    """`scope_condition` as a list for `extra_conditions=` parameters (empty: no restriction)."""
    found = scope_condition(access, table, actor=actor, dialect=dialect, now=now, action=action)
    return [] if found is None else [found]


def _term(
    term: ScopeTerm, table: sa.Table, actor: ActorLike, dialect: str, now: datetime
) -> ColumnElement[bool]:
    if term.kind == "own":
        return _owned_by(table, actor.user_id)
    if term.kind == "assigned":
        return _assigned(table, term.fields, actor.user_id, dialect)
    if term.kind == "department":
        return _owner_in_departments(table, actor.department_ids, dialect)
    if term.kind == "department_tree":
        return _owner_in_departments(table, actor.subtree_department_ids, dialect)
    if term.kind == "expr" and term.expr is not None:
        return _expression(term.expr, table, actor, dialect, now)
    raise ValueError(f"unknown scope term {term.kind!r}")


def _owned_by(table: sa.Table, user_id: int | None) -> ColumnElement[bool]:
    if user_id is None:
        return sa.false()
    return table.c.owner_id == sa.bindparam(None, user_id, type_=sa.Integer)


def _owner_in_departments(
    table: sa.Table, department_ids: Iterable[int], dialect: str
) -> ColumnElement[bool]:
    ids = sorted(department_ids)
    if not ids:
        return sa.false()
    members = sa.select(user_departments.c.user_id).where(
        user_departments.c.department_id.in_(sa.bindparam(None, ids, expanding=True))
    )
    if dialect == "postgresql":
        # ARRAY(subquery) runs once (an InitPlan); `owner_id = ANY($0)` is then a cheap filter
        # on the sort index's scan, or an index condition on an owner_id index. A plain IN
        # (subquery) becomes a join the planner probes once per scanned row.
        found = sa.func.array(members.scalar_subquery(), type_=ARRAY(sa.Integer))
        return table.c.owner_id == sa.any_(found)
    return table.c.owner_id.in_(members)


def _assigned(
    table: sa.Table, fields: Sequence[str], user_id: int | None, dialect: str
) -> ColumnElement[bool]:
    if user_id is None:
        return sa.false()
    tests = []
    for key in fields:
        column = table.c.get(key)
        if column is None:
            message = f"assigned field {key!r} is not a column of {table.name}"
            problem = Problem(code=BAD_ASSIGNED_FIELD, path="/assigned_fields", message=message)
            raise DefinitionError([problem])
        tests.append(_holds_user(column, user_id, dialect))
    return sa.or_(sa.false(), *tests)


def _holds_user(column: sa.Column[Any], user_id: int, dialect: str) -> ColumnElement[bool]:
    if not isinstance(column.type, sa.JSON):
        return column == sa.bindparam(None, user_id, type_=sa.Integer)
    if dialect == "postgresql":
        # jsonb @> is what a GIN index (jsonb_path_ops) on the column serves.
        wanted = sa.bindparam(None, json.dumps([user_id]), type_=sa.Text).cast(JSONB)
        return column.op("@>", is_comparison=True)(wanted)
    each = sa.func.json_each(column).table_valued("value")
    value = sa.bindparam(None, user_id, type_=sa.Integer)
    return sa.select(sa.literal(1)).select_from(each).where(each.c.value == value).exists()


# --- scope expressions -----------------------------------------------------------------------


def _expression(
    expr: Expression, table: sa.Table, actor: ActorLike, dialect: str, now: datetime
) -> ColumnElement[bool]:
    lists = {
        "$user.departments": sorted(actor.department_ids),
        "$user.department_tree": sorted(actor.subtree_department_ids),
    }
    columns: dict[str, Sql] = {column.name: column for column in table.c}
    # composite parts as forms spell them elsewhere: `site.province` for `site__province`
    columns.update({c.name.replace("__", ".", 1): c for c in table.c if "__" in c.name})
    columns["owner"] = table.c.owner_id
    user_id = sa.bindparam(None, actor.user_id, type_=sa.Integer)
    columns["$user.id"] = columns["$user"] = user_id
    name = getattr(actor, "display_name", None) or getattr(actor, "username", None)
    columns["$user.name"] = sa.bindparam(None, name, type_=sa.String)
    root = _expand_lists(expr.root, lists, columns)
    try:
        return compile_filter(replace(expr, root=root), columns, dialect=dialect, now=now)
    except ExpressionError as err:
        raise _bad_expr(f"{expr.text}: {err}") from err


def _expand_lists(node: Node, lists: Mapping[str, list[int]], columns: dict[str, Sql]) -> Node:
    """`x in ($user.departments)` becomes `x in (:d1, :d2, …)`; an empty list, plain FALSE."""
    if isinstance(node, Membership):
        items: list[Node] = []
        for item in node.items:
            if isinstance(item, Ref) and item.name in lists:
                items.extend(_bound_items(item, lists[item.name], columns))
            else:
                items.append(_expand_lists(item, lists, columns))
        operand = _expand_lists(node.operand, lists, columns)
        if not items:
            return Literal(node.negated, node.pos)
        return replace(node, operand=operand, items=tuple(items))
    if isinstance(node, Unary):
        return replace(node, operand=_expand_lists(node.operand, lists, columns))
    if isinstance(node, Binary):
        left = _expand_lists(node.left, lists, columns)
        return replace(node, left=left, right=_expand_lists(node.right, lists, columns))
    if isinstance(node, Call):
        return replace(node, args=tuple(_expand_lists(a, lists, columns) for a in node.args))
    return node


def _bound_items(ref: Ref, values: list[int], columns: dict[str, Sql]) -> list[Node]:
    items: list[Node] = []
    for position, value in enumerate(values):
        name = f"{ref.name}.{position}"
        columns[name] = sa.bindparam(None, value, type_=sa.Integer)
        items.append(Ref(name, ref.pos))
    return items


def _bad_expr(message: str) -> DefinitionError:
    return DefinitionError([Problem(code=BAD_SCOPE_EXPR, path="/scope_expr", message=message)])


# --- field masks -----------------------------------------------------------------------------


def field_of_column(name: str, field_columns: Mapping[str, Sequence[str]] | None = None) -> str:
    """The field key a form-table column stores (`site__city` → `site`)."""
    for key, names in (field_columns or {}).items():
        if name in names:
            return key
    return name.split("__", 1)[0]


def field_mask_columns(
    access: FormAccess,
    table: sa.Table,
    *,
    field_columns: Mapping[str, Sequence[str]] | None = None,
) -> list[sa.Column[Any]]:
    """The columns of `table` the actor may read: system columns and non-hidden fields."""
    return [
        column
        for column in table.c
        if column.name in SYSTEM_COLUMNS
        or not access.is_hidden(field_of_column(column.name, field_columns))
    ]


def hidden_columns(
    access: FormAccess,
    table: sa.Table,
    *,
    field_columns: Mapping[str, Sequence[str]] | None = None,
) -> frozenset[str]:
    """Names of the columns of `table` the actor may not read (to drop from rows and exports)."""
    kept = {c.name for c in field_mask_columns(access, table, field_columns=field_columns)}
    return frozenset(c.name for c in table.c if c.name not in kept)


# --- single records and batches --------------------------------------------------------------


def require_record_in_scope(
    conn: sa.Connection,
    access: FormAccess,
    table: sa.Table,
    record_id: int,
    *,
    actor: ActorLike,
    now: datetime,
    action: str = "read",
) -> None:
    """Raise `NotFoundError` unless record `record_id` exists and `action` reaches it.

    Out of scope and missing look the same (404, not 403), so ids cannot be probed. Use it
    before history, comments, attachment downloads and any path that takes a record id.
    """
    found = records_in_scope(conn, access, table, [record_id], actor=actor, now=now, action=action)
    if record_id not in found:
        raise NotFoundError(f"record {record_id} not found", code="record.not-found")


def records_in_scope(
    conn: sa.Connection,
    access: FormAccess,
    table: sa.Table,
    record_ids: Iterable[int],
    *,
    actor: ActorLike,
    now: datetime,
    action: str = "read",
) -> frozenset[int]:
    """The ids among `record_ids` that exist, are not deleted, and `action` reaches."""
    ids = sorted(set(record_ids))
    if not ids or not access.can(action):
        return frozenset()
    dialect = conn.dialect.name
    where: list[ColumnElement[bool]] = [table.c.id.in_(sa.bindparam(None, ids, expanding=True))]
    if "deleted_at" in table.c:
        where.append(table.c.deleted_at.is_(None))
    where += scope_conditions(access, table, actor=actor, dialect=dialect, now=now, action=action)
    return frozenset(conn.execute(sa.select(table.c.id).where(*where)).scalars())


__all__ = [
    "LIST_VARIABLES",
    "field_mask_columns",
    "field_of_column",
    "hidden_columns",
    "records_in_scope",
    "require_record_in_scope",
    "scope_condition",
    "scope_conditions",
]

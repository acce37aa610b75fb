"""Assignee rules: who gets a user task, resolved over users, roles, departments and attributes.

Every rule yields active users only (disabled users never get tasks). A rule's `candidates`
expression narrows what the rule found: it sees the record's fields and `$candidate` (the
user's id, username and attributes). Groups (`round_robin`, `least_loaded`, `skill_match`,
`pool`) are named as `role:KEY`, `department:KEY` or a bare role key. docs/tasks.md has the
full reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import TransitionError
from engine.expr import Expression, ExpressionError, evaluate, parse
from engine.flows.assignees_attrs import load_attributes, skill_level
from engine.flows.assignees_directory import (
    active_only,
    department_id,
    department_tree,
    members,
    primary_department,
    role_members,
    subtree,
)
from engine.flows.spec import AssigneeRule
from engine.storage.tables import users
from engine.storage.tables_assign import assign_counters, flow_tasks

BAD_RULE = "task.bad-assignee-rule"
OPEN_STATUSES = ("open", "waiting")


@dataclass(frozen=True, slots=True)
class AssignContext:
    """What rules read: the app (roles are per app), the record and the initiator.

    `scope` names the node for round-robin counters (`app/flow/node`).
    """

    app: str
    scope: str
    record: Mapping[str, Any]
    initiator_id: int | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    """The users a rule picked, in order; `pool` means one task any of them may claim."""

    user_ids: tuple[int, ...]
    pool: bool = False


def resolve_rule(
    conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext, *, index: int = 0
) -> Assignment:
    """The active users `rule` assigns in `ctx` (empty when nobody matches).

    Raises:
        TransitionError: `task.bad-assignee-rule` when the rule cannot be evaluated.
    """
    kind = rule.type
    if kind in _PICKERS:
        group = active_only(conn, _group_members(conn, ctx.app, _group_part(rule)))
        group = _narrow(conn, rule, ctx, group)
        picked = _PICKERS[kind](conn, rule, ctx, group, f"{ctx.scope}#{index}")
        return Assignment(picked)
    if kind == "pool":
        group = active_only(conn, _group_members(conn, ctx.app, _require_value(rule)))
        return Assignment(tuple(_narrow(conn, rule, ctx, group)), pool=True)
    found = active_only(conn, _DIRECT[kind](conn, rule, ctx))
    return Assignment(tuple(_narrow(conn, rule, ctx, found)))


# --- direct rules ------------------------------------------------------------------------------


def _by_user(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    names = [part.strip() for part in _require_value(rule).split(",") if part.strip()]
    ids = [int(n) for n in names if n.isdigit()]
    named = [n for n in names if not n.isdigit()]
    if named:
        query = sa.select(users.c.id, users.c.username).where(users.c.username.in_(named))
        by_name = {row.username: row.id for row in conn.execute(query)}
        ids += [by_name[n] for n in named if n in by_name]
    return ids


def _by_role(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    return role_members(conn, app=ctx.app, key=_require_value(rule))


def _by_department(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    department = department_id(conn, _require_value(rule))
    return [] if department is None else members(conn, [department])


def _by_head(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    if rule.value:
        start = department_id(conn, rule.value)
    else:
        start = None if ctx.initiator_id is None else primary_department(conn, ctx.initiator_id)
    tree = department_tree(conn)
    node = start
    for _ in range(rule.levels_up):
        node = None if node is None else tree.get(node, (None, None))[0]
    if node is None or node not in tree:
        return []
    head = tree[node][1]
    return [] if head is None else [head]


def _by_field(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    return user_ids_of(ctx.record.get(_require_value(rule)))


def _by_initiator(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    return [] if ctx.initiator_id is None else [ctx.initiator_id]


def _by_expr(conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext) -> list[int]:
    value = _evaluate(_require_value(rule), _values(ctx), ctx.now)
    named = [v for v in _as_list(value) if isinstance(v, str) and not v.isdigit()]
    ids = user_ids_of([v for v in _as_list(value) if v not in named])
    if named:
        query = sa.select(users.c.id).where(users.c.username.in_(named))
        ids += list(conn.execute(query).scalars())
    return ids


_DIRECT = {
    "user": _by_user,
    "role": _by_role,
    "department": _by_department,
    "department_head": _by_head,
    "field": _by_field,
    "initiator": _by_initiator,
    "expr": _by_expr,
}


# --- pickers: one user out of a group ----------------------------------------------------------


def _round_robin(
    conn: sa.Connection,
    rule: AssigneeRule,
    ctx: AssignContext,
    group: list[int],
    scope: str,
) -> tuple[int, ...]:
    if not group:
        return ()
    turn = next_turn(conn, scope=scope)
    return (sorted(group)[(turn - 1) % len(group)],)


def _least_loaded(
    conn: sa.Connection,
    rule: AssigneeRule,
    ctx: AssignContext,
    group: list[int],
    scope: str,
) -> tuple[int, ...]:
    if not group:
        return ()
    load = open_load(conn, group)
    return (min(sorted(group), key=lambda user: load.get(user, 0)),)


def _skill_match(
    conn: sa.Connection,
    rule: AssigneeRule,
    ctx: AssignContext,
    group: list[int],
    scope: str,
) -> tuple[int, ...]:
    wanted = _attribute_terms(rule)
    attributes = load_attributes(conn, group)
    matching = []
    for user in group:
        mine = attributes.get(user, {})
        if all(_has(mine.get(attr), ctx.record.get(field)) for attr, field in wanted):
            matching.append(user)
    if not matching:
        return ()
    load = open_load(conn, matching)
    first_skill = next((ctx.record.get(f) for a, f in wanted if a == "skills"), None)

    def rank(user: int) -> tuple[int, int, int]:
        level = skill_level(attributes.get(user, {}).get("skills"), first_skill)
        return (load.get(user, 0), -level, user)

    return (min(matching, key=rank),)


_PICKERS = {
    "round_robin": _round_robin,
    "least_loaded": _least_loaded,
    "skill_match": _skill_match,
}


def next_turn(conn: sa.Connection, *, scope: str) -> int:
    """Bump the round-robin counter of `scope` and return its new value (1 for the first).

    The single UPDATE takes the row lock, so concurrent assignments each get their own value.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(assign_counters)
        .values(scope=scope, value=0)
        .on_conflict_do_nothing(index_elements=["scope"])
    )
    bumped = (
        sa.update(assign_counters)
        .where(assign_counters.c.scope == scope)
        .values(value=assign_counters.c.value + 1)
        .returning(assign_counters.c.value)
    )
    return int(conn.execute(bumped).scalar_one())


def open_load(conn: sa.Connection, user_ids: Iterable[int]) -> dict[int, int]:
    """Open and waiting tasks per user."""
    query = (
        sa.select(flow_tasks.c.assignee_id, sa.func.count())
        .where(
            flow_tasks.c.assignee_id.in_(list(user_ids)),
            flow_tasks.c.status.in_(OPEN_STATUSES),
        )
        .group_by(flow_tasks.c.assignee_id)
    )
    return {int(user): int(count) for user, count in conn.execute(query)}


# --- groups and the directory ------------------------------------------------------------------


def user_ids_of(value: Any) -> list[int]:
    """User ids in a user field's value: an id, a digit string, a `{id: …}` or a list of these."""
    out: list[int] = []
    for item in _as_list(value):
        if isinstance(item, Mapping):
            item = item.get("id")
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            out.append(int(item))
        elif item is not None and hasattr(item, "to_integral_value"):  # Decimal from expressions
            out.append(int(item))
    return out


def _group_members(conn: sa.Connection, app: str, group: str | None) -> list[int]:
    if group is None:
        return list(conn.execute(sa.select(users.c.id)).scalars())
    kind, _, key = group.partition(":")
    if not key:
        return role_members(conn, app=app, key=kind)
    if kind == "role":
        return role_members(conn, app=app, key=key)
    if kind == "department":
        found = department_id(conn, key)
        return [] if found is None else members(conn, subtree(conn, [found]))
    raise TransitionError(f"unknown assignee group {group!r}", code=BAD_RULE)


def _group_part(rule: AssigneeRule) -> str | None:
    """The group of a picker rule: the value's words without `attr=field` terms."""
    words = [w for w in (rule.value or "").split() if "=" not in w]
    if len(words) > 1:
        raise TransitionError(f"one group per rule, got {rule.value!r}", code=BAD_RULE)
    if not words and rule.type != "skill_match":
        raise TransitionError(f"a {rule.type} rule needs a group as its value", code=BAD_RULE)
    return words[0] if words else None


def _attribute_terms(rule: AssigneeRule) -> list[tuple[str, str]]:
    terms = [w.split("=", 1) for w in (rule.value or "").split() if "=" in w]
    if not terms:
        raise TransitionError("skill_match needs attr=field terms in its value", code=BAD_RULE)
    return [(attr, field) for attr, field in terms]


def _has(attribute: Any, wanted: Any) -> bool:
    """Whether a user attribute (list, {name: level} or a value) covers the record's value(s)."""
    needed = [w for w in _as_list(wanted) if w not in (None, "")]
    if not needed:
        return True
    if isinstance(attribute, Mapping):
        return all(str(w) in attribute for w in needed)
    held = {str(a) for a in _as_list(attribute)}
    return all(str(w) in held for w in needed)


def _narrow(
    conn: sa.Connection, rule: AssigneeRule, ctx: AssignContext, found: list[int]
) -> list[int]:
    if rule.candidates is None or not found:
        return found
    attributes = load_attributes(conn, found)
    query = sa.select(users.c.id, users.c.username).where(users.c.id.in_(found))
    names = {int(row.id): str(row.username) for row in conn.execute(query)}
    base = _values(ctx)
    kept = []
    for user in found:
        candidate = {**attributes.get(user, {}), "id": user, "username": names.get(user)}
        if _evaluate(str(rule.candidates), {**base, "$candidate": candidate}, ctx.now) is True:
            kept.append(user)
    return kept


def _values(ctx: AssignContext) -> dict[str, Any]:
    return {**ctx.record, "$record": dict(ctx.record), "$initiator": ctx.initiator_id}


def _evaluate(text: str, values: Mapping[str, Any], now: datetime) -> Any:
    try:
        return evaluate(_parsed(text), values, now=now)
    except ExpressionError as err:
        raise TransitionError(f"assignee expression {text!r}: {err}", code=BAD_RULE) from err


@lru_cache(maxsize=256)
def _parsed(text: str) -> Expression:
    try:
        return parse(text)
    except ExpressionError as err:
        raise TransitionError(f"assignee expression {text!r}: {err}", code=BAD_RULE) from err


def _require_value(rule: AssigneeRule) -> str:
    if not rule.value:
        raise TransitionError(f"a {rule.type} rule needs a value", code=BAD_RULE)
    return rule.value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


__all__ = [
    "AssignContext",
    "Assignment",
    "BAD_RULE",
    "next_turn",
    "open_load",
    "resolve_rule",
    "user_ids_of",
]

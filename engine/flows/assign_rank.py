"""The `pick_assignee` action: one user out of a directory form's rows, or the claim pool.

Steps: read every live directory row; screen them with the hard filters; lock the rows that
passed (in id order, `FOR UPDATE` on PostgreSQL) and screen them again as they are now; rank
the rest; stamp the winner's row (e.g. last_assigned_at) and write the record. The lock makes
concurrent assignments queue up behind each other, so the second one sees the first one's
stamp and load and picks the next person (fair round robin). Every excluded candidate is
returned with its reasons, so the instance history says why each person was passed over.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.expr import evaluate
from engine.flows.actions import ActionContext, jsonable
from engine.flows.assign_filters import (
    ActiveFilter,
    Candidate,
    Exclusion,
    rank,
    requirements,
    screen,
)
from engine.flows.assignees_directory import active_only
from engine.flows.routing import Opened, current_values, remember, target, write_record
from engine.flows.routing import column as routing_column
from engine.flows.spec_assign import LoadSource, PickAssignee
from engine.storage.tables import users

INACTIVE = "inactive_user"


def run_pick_assignee(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, PickAssignee)
    opened = Opened(ctx)
    values = current_values(ctx, _exprs(path, action), opened)
    filters = _active_filters(ctx, action, path, values)
    app, form = target(ctx, action.directory)
    found, disabled = _candidates(ctx, opened, action, app, form, ids=None)
    first = screen(found, filters, record=values, now=ctx.now)
    excluded = [(c, [Exclusion(INACTIVE, "the user is disabled")]) for c in disabled]
    excluded += first.excluded
    passed: list[Candidate] = []
    if first.passed:
        # Lock, then look again: a concurrent assignment may have changed loads and stamps.
        locked = _lock(ctx, opened, app, form, [c.record_id for c in first.passed])
        fresh, _disabled = _candidates(ctx, opened, action, app, form, ids=locked)
        again = screen(fresh, filters, record=values, now=ctx.now)
        excluded += again.excluded
        passed = again.passed
    skill = next(
        (
            (f.spec, r[0][0])
            for f in filters
            if f.spec.test == "skills"
            if (r := requirements(f.spec, f.wanted))
        ),
        None,
    )
    ranked = rank(passed, action.rank, skill=skill)
    names = _usernames(ctx, [c.user_id for c, _ in excluded] + [c.user_id for c in ranked])
    outcome: dict[str, Any] = {
        "assignee": None,
        "ranked": [_row(c, names) for c in ranked],
        "excluded": [_excluded(c, reasons, names) for c, reasons in excluded],
        "pool": [],
    }
    if ranked:
        winner = ranked[0]
        outcome["assignee"] = winner.user_id
        if action.stamp_field is not None:
            ctx.writer().update(
                app, form, winner.record_id, {action.stamp_field: ctx.now}, actor=None
            )
        scope = {**values, "$assignee": winner.user_id, "$candidate": dict(winner.values)}
        changed = write_record(ctx, action.set, f"{path}/set", scope, opened)
    else:
        outcome["pool"] = _pool(excluded, set(action.pool_ignores))
        changed = write_record(ctx, action.otherwise, f"{path}/otherwise", values, opened)
    remember(ctx, action.into, outcome)
    return {"type": "pick_assignee", "directory": form, **outcome, "changed": changed}


def _active_filters(
    ctx: ActionContext, action: PickAssignee, path: str, values: dict[str, Any]
) -> list[ActiveFilter]:
    found = []
    for i, spec in enumerate(action.filters):
        base = f"{path}/filters/{i}"
        if (
            spec.when is not None
            and evaluate(ctx.flow.expr(f"{base}/when"), values, now=ctx.now) is not True
        ):
            continue
        if spec.test == "expr":
            found.append(ActiveFilter(spec=spec, expr=ctx.flow.expr(f"{base}/value")))
        else:
            wanted = None
            if spec.value is not None:
                wanted = evaluate(ctx.flow.expr(f"{base}/value"), values, now=ctx.now)
            found.append(ActiveFilter(spec=spec, wanted=wanted))
    return found


def _candidates(
    ctx: ActionContext,
    opened: Opened,
    action: PickAssignee,
    app: str,
    form: str,
    *,
    ids: list[int] | None,
) -> tuple[list[Candidate], list[Candidate]]:
    """The directory rows `ids` (None: every live row) with a user: (active, disabled users)."""
    _definition, store = opened(app, form)
    main = store.layout.main
    if ids is None:
        query = sa.select(main.c.id).where(main.c.deleted_at.is_(None)).order_by(main.c.id)
        ids = [int(i) for i in ctx.uow.conn.execute(query).scalars()]
    rows = store.get_many(ids=ids)
    user_of = {r.id: _user(r.values.get(action.user_field)) for r in rows}
    active = set(active_only(ctx.uow.conn, [u for u in user_of.values() if u is not None]))
    loads = _loads(ctx, opened, action.load, sorted(active))
    out = []
    for row in rows:
        user = user_of[row.id]
        if user is None:
            continue  # a directory row without a user is nobody to assign
        load = loads.get(user, 0)
        out.append(Candidate(record_id=row.id, user_id=user, values=row.values, load=load))
    return [c for c in out if c.user_id in active], [c for c in out if c.user_id not in active]


def _lock(ctx: ActionContext, opened: Opened, app: str, form: str, ids: list[int]) -> list[int]:
    """Lock the directory rows `ids` in id order (no deadlock between two assignments); the
    ones still live."""
    _definition, store = opened(app, form)
    main = store.layout.main
    query = (
        sa.select(main.c.id)
        .where(main.c.id.in_(ids), main.c.deleted_at.is_(None))
        .order_by(main.c.id)
        .with_for_update()
    )
    return [int(i) for i in ctx.uow.conn.execute(query).scalars()]


def _loads(
    ctx: ActionContext, opened: Opened, source: LoadSource | None, user_ids: list[int]
) -> dict[int, int]:
    """Live records of the load form per user (one grouped query)."""
    if source is None or not user_ids:
        return {}
    from engine.expr import compile_filter, parse

    app, form = target(ctx, source.form)
    _definition, store = opened(app, form)
    main = store.layout.main
    column = routing_column(main, source.user_field, form)
    query = (
        sa.select(column, sa.func.count())
        .where(column.in_(user_ids), main.c.deleted_at.is_(None))
        .group_by(column)
    )
    if source.where is not None:
        columns = dict(main.c.items())
        condition = compile_filter(
            parse(source.where), columns, dialect=ctx.uow.conn.dialect.name, now=ctx.now
        )
        query = query.where(condition)
    return {int(user): int(count) for user, count in ctx.uow.conn.execute(query)}


def _pool(excluded: list[tuple[Candidate, list[Exclusion]]], ignored: set[str]) -> list[int]:
    """Users who pass every filter but the ignored ones (e.g. load): they may claim."""
    return sorted(
        {c.user_id for c, reasons in excluded if all(r.reason in ignored for r in reasons)}
    )


def _usernames(ctx: ActionContext, user_ids: list[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    query = sa.select(users.c.id, users.c.username).where(users.c.id.in_(set(user_ids)))
    return {int(row.id): str(row.username) for row in ctx.uow.conn.execute(query)}


def _row(candidate: Candidate, names: dict[int, str]) -> dict[str, Any]:
    return {
        "user": candidate.user_id,
        "username": names.get(candidate.user_id),
        "record": candidate.record_id,
        "load": candidate.load,
    }


def _excluded(
    candidate: Candidate, reasons: list[Exclusion], names: dict[int, str]
) -> dict[str, Any]:
    return {
        **_row(candidate, names),
        "reason": reasons[0].reason,
        "detail": reasons[0].detail,
        "reasons": [{"reason": r.reason, "detail": r.detail} for r in reasons],
    }


def _user(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _exprs(path: str, action: PickAssignee) -> list[str]:
    found = [f"{path}/set/{k}" for k in action.set]
    found += [f"{path}/otherwise/{k}" for k in action.otherwise]
    for i in range(len(action.filters)):
        found += [f"{path}/filters/{i}/value", f"{path}/filters/{i}/when"]
    return found


__all__ = ["INACTIVE", "jsonable", "run_pick_assignee"]

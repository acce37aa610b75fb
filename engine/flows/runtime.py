"""The flow runtime's decisions, free of storage: which ways out of a node a token takes, when a
join fires, how long a timer waits; and `resume_token`, the entry point of the task service.

The steps that read and write flow state live in runtime_steps.py; `resume_token` hands over
to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import TransitionError
from engine.expr import evaluate
from engine.flows.compiler import CompiledEdge, CompiledFlow
from engine.flows.refs import TaskOutcome
from engine.flows.spec import JoinNode

if TYPE_CHECKING:
    from engine.flows.runtime_steps import UnitOfWork

NO_WAY_OUT = "flow.no-way-out"
_DURATION = re.compile(
    r"^P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_UNIT_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "W": 7 * 86400, "D": 86400}
_UNIT_SECONDS.update({"h": 3600, "m": 60, "s": 1})


def duration(text: str) -> timedelta:
    """An ISO 8601 duration (the spec's `Duration`); a month counts 30 days, a year 365."""
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    seconds = sum(int(v) * _UNIT_SECONDS[k] for k, v in found.groupdict().items() if v)
    return timedelta(seconds=seconds)


def is_true(value: Any) -> bool:
    """A guard holds only when it is TRUE (blank is not true)."""
    return value is True


def ways_out(
    flow: CompiledFlow,
    node_key: str,
    values: Mapping[str, Any],
    *,
    now: datetime,
    outcome: str | None = None,
) -> tuple[CompiledEdge, ...]:
    """The edges a token leaving `node_key` takes.

    A parallel split takes every edge whose guard holds; any other node takes the first
    guarded edge (condition branch, edge condition, task outcome) that holds, else its default
    or unguarded edge. Evaluation errors propagate (`ExpressionError`).

    Raises:
        TransitionError: `flow.no-way-out` when no edge can be taken.
    """
    edges = flow.outgoing.get(node_key, ())
    node = flow.node(node_key)
    if node.type == "parallel_split":
        taken = tuple(e for e in edges if _holds(e, values, now, outcome))
    else:
        guarded = [e for e in edges if e.is_guarded and not e.default]
        first = next((e for e in guarded if _holds(e, values, now, outcome)), None)
        fallback = [e for e in edges if e.default or not e.is_guarded]
        taken = (first,) if first is not None else tuple(fallback[:1])
    if not taken and node.type != "end":
        raise TransitionError(f"no way out of node {node_key!r}", code=NO_WAY_OUT)
    return taken


def _holds(
    edge: CompiledEdge, values: Mapping[str, Any], now: datetime, outcome: str | None
) -> bool:
    if edge.outcome is not None and edge.outcome != outcome:
        return False
    if edge.condition is None:
        return True
    return is_true(evaluate(edge.condition, values, now=now))


def join_fires(flow: CompiledFlow, join: JoinNode, arrived_from: set[str]) -> bool:
    """Whether enough distinct branches have arrived at `join`."""
    return len(arrived_from) >= flow.join_needs(join)


def as_moment(value: Any) -> datetime:
    """A timer's `until` value as an aware datetime (a date means its midnight, UTC)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    raise TransitionError(f"a timer's until gives {value!r}, not a date", code="flow.bad-until")


def resume_token(
    uow: UnitOfWork,
    *,
    token_id: int,
    outcome: TaskOutcome,
    actor_id: int | None,
    now: datetime,
    goto: str | None = None,
) -> None:
    """Move a token waiting at a user task on, in `uow` (the caller commits).

    `outcome` picks among outcome-guarded edges; `goto` (a return) sends the token to that
    node instead. A step that fails puts the instance in `error` and leaves the rest of
    `uow` intact.

    Raises:
        NotFoundError: `flow.token-not-found`.
        TransitionError: `flow.token-not-waiting` when the token does not wait at a user task.
    """
    from engine.flows.runtime_steps import Stepper

    Stepper(uow, now=now, actor_id=actor_id).resume(token_id, outcome=outcome, goto=goto)


__all__ = [
    "NO_WAY_OUT",
    "as_moment",
    "duration",
    "is_true",
    "join_fires",
    "resume_token",
    "ways_out",
]

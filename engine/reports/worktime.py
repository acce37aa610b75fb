"""Business-time windows in report expressions: `WORKTIMEADD(start, n, unit, calendar)`.

The instant `n` business hours (minutes, seconds) after `start` on a business calendar of the
app, e.g. `response_by <= WORKTIMEADD(NOW(), 2, "hour", "cn_8x5")`. `start` must be a constant
(NOW(), TODAY(), $now, $today or a date/datetime text) so the value is computed in Python by
`engine.flows.calendar.add_business` and bound as a parameter: the database never does
calendar arithmetic. `calendar` is a calendar key (a text literal), or a per-row expression
giving one; then the SQL is `CASE <expr> WHEN :cal1 THEN :t1 ... END` over the app's
calendars (blank for a key that is not a calendar).

The compiler replaces each call by a reference (`$worktime1`) before type checking
(`extract`); `bind` attaches the app's calendars; `engine.reports.worktime_sql` builds the
value of the reference per request, with the request's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import DefinitionError, Problem
from engine.expr.nodes import Binary, Call, Expression, Literal, Membership, Node, Ref, Unary
from engine.expr.nodes import children as child_nodes
from engine.flows.calendar import BusinessCalendar

if TYPE_CHECKING:
    from engine.reports.compiler import CompiledDimension, CompiledMeasure, ReportExpr

FUNCTION = "WORKTIMEADD"
UNITS = {"hour": 3_600, "minute": 60, "second": 1}
BAD_ARGS = "report.worktime-args"
BAD_TIME = "report.worktime-time"
BAD_UNIT = "report.worktime-unit"
UNKNOWN_CALENDAR = "report.unknown-calendar"
_CLOCK_CALLS = {"NOW": "now", "TODAY": "today"}
_CLOCK_REFS = {"$now": "now", "$today": "today"}


@dataclass(frozen=True, slots=True)
class Calendars:
    """The app's business calendars by key, and a digest of their versions (cache keys)."""

    by_key: Mapping[str, BusinessCalendar]
    digest: str


NO_CALENDARS = Calendars({}, "")


@dataclass(frozen=True, slots=True)
class WorktimeCall:
    """One `WORKTIMEADD` call, replaced in its expression by the reference `name`."""

    name: str
    start: str | date  # "now", "today", or a constant date / datetime
    seconds: int
    calendar: str | None  # a literal calendar key
    calendar_expr: Expression | None  # else the per-row expression giving the key
    where: str
    calendars: Calendars = NO_CALENDARS


def uses_worktime(text: str) -> bool:
    """Whether a definition's text may call the function (a cheap test before loading)."""
    return FUNCTION.lower() + "(" in text.lower()


def _problem(code: str, where: str, node: Node, message: str) -> DefinitionError:
    at = f"{FUNCTION} at column {node.pos.column}: {message}"
    return DefinitionError([Problem(code=code, path=where, message=at)])


def _start(node: Node, where: str) -> str | date:
    if isinstance(node, Call) and node.name in _CLOCK_CALLS and not node.args:
        return _CLOCK_CALLS[node.name]
    if isinstance(node, Ref) and node.name in _CLOCK_REFS:
        return _CLOCK_REFS[node.name]
    if isinstance(node, Literal) and isinstance(node.value, str):
        try:
            if len(node.value) == 10:
                return date.fromisoformat(node.value)
            return datetime.fromisoformat(node.value)
        except ValueError:
            pass
    raise _problem(
        BAD_TIME, where, node, "the start must be NOW(), TODAY() or a date/datetime text"
    )


def _seconds(amount: Node, unit: Node, where: str) -> int:
    if not isinstance(amount, Literal) or not isinstance(amount.value, Decimal):
        raise _problem(BAD_ARGS, where, amount, "the amount must be a number literal (>= 0)")
    if not isinstance(unit, Literal) or unit.value not in UNITS:
        raise _problem(BAD_UNIT, where, unit, f"the unit must be one of {', '.join(UNITS)}")
    return int(amount.value * UNITS[str(unit.value)])


def _call(node: Call, name: str, text: str, where: str) -> WorktimeCall:
    if len(node.args) != 4:
        raise _problem(BAD_ARGS, where, node, "takes (start, amount, unit, calendar)")
    start, amount, unit, calendar = node.args
    seconds = _seconds(amount, unit, where)
    if isinstance(calendar, Literal) and isinstance(calendar.value, str):
        return WorktimeCall(name, _start(start, where), seconds, calendar.value, None, where)
    size = _size(calendar)
    per_row = Expression(text=f"{text} [calendar]", root=calendar, node_count=size)
    return WorktimeCall(name, _start(start, where), seconds, None, per_row, where)


def _size(node: Node) -> int:
    return 1 + sum(_size(child) for child in child_nodes(node))


def extract(expression: Expression, where: str) -> tuple[Expression, tuple[WorktimeCall, ...]]:
    """`expression` with each `WORKTIMEADD` call replaced by a `$worktime<n>` reference.

    Raises:
        DefinitionError: a non-constant start, an amount that is not a number literal, a
            unit other than hour/minute/second (codes `report.worktime-*`, path `where`).
    """
    calls: list[WorktimeCall] = []

    def walk(node: Node) -> Node:
        if isinstance(node, Call) and node.name == FUNCTION:
            call = _call(node, f"$worktime{len(calls) + 1}", expression.text, where)
            calls.append(call)
            return Ref(call.name, node.pos)
        if isinstance(node, Unary):
            return replace(node, operand=walk(node.operand))
        if isinstance(node, Binary):
            return replace(node, left=walk(node.left), right=walk(node.right))
        if isinstance(node, Membership):
            items = tuple(walk(item) for item in node.items)
            return replace(node, operand=walk(node.operand), items=items)
        if isinstance(node, Call):
            return replace(node, args=tuple(walk(arg) for arg in node.args))
        return node

    if not uses_worktime(expression.text):
        return expression, ()
    root = walk(expression.root)
    return replace(expression, root=root), tuple(calls)


def bind(
    dimensions: Sequence[CompiledDimension],
    measures: Sequence[CompiledMeasure],
    where: Sequence[ReportExpr],
    calendars: Calendars,
    problems: list[Problem],
) -> tuple[list[CompiledDimension], list[CompiledMeasure], list[ReportExpr]]:
    """The compiled parts with the app's calendars attached to their calls; an unknown
    literal calendar key is a `report.unknown-calendar` problem."""

    def bound(item: ReportExpr | None) -> Any:
        if item is None or not item.worktime:
            return item
        for call in item.worktime:
            if call.calendar is not None and call.calendar not in calendars.by_key:
                known = ", ".join(sorted(calendars.by_key)) or "none"
                message = f"no calendar {call.calendar!r} in the app (calendars: {known})"
                problems.append(Problem(UNKNOWN_CALENDAR, call.where, message))
        calls = tuple(replace(call, calendars=calendars) for call in item.worktime)
        return replace(item, worktime=calls)

    return (
        [replace(d, expr=bound(d.expr)) if d.expr else d for d in dimensions],
        [replace(m, filter=bound(m.filter), value=bound(m.value)) for m in measures],
        [bound(item) for item in where],
    )


def has_calls(
    dimensions: Sequence[CompiledDimension],
    measures: Sequence[CompiledMeasure],
    where: Sequence[ReportExpr],
) -> bool:
    """Whether any expression calls `WORKTIMEADD` (its value moves with the clock)."""
    items = [d.expr for d in dimensions] + [x for m in measures for x in (m.filter, m.value)]
    return any(item is not None and item.worktime for item in [*items, *where])


__all__ = [
    "BAD_ARGS",
    "BAD_TIME",
    "BAD_UNIT",
    "FUNCTION",
    "NO_CALENDARS",
    "UNKNOWN_CALENDAR",
    "Calendars",
    "WorktimeCall",
    "bind",
    "extract",
    "has_calls",
    "uses_worktime",
]

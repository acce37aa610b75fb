"""`evaluate`: the Python evaluator, a tree walk with a step budget and a cap on text size.

Values come in as Python objects (numbers as int, float or Decimal; dates; aware or UTC-naive
datetimes) and come out normalised: numbers as Decimal, datetimes in UTC, blank as None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.expr import _values as v
from engine.expr.errors import ExpressionError
from engine.expr.functions import FUNCTIONS, kleene_and, kleene_or
from engine.expr.nodes import Binary, Call, Expression, Literal, Membership, Node, Ref, Unary

MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_STEPS = 10_000


def evaluate(
    expr: Expression,
    values: Mapping[str, Any],
    *,
    now: datetime,
    timezone: tzinfo = UTC,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Any:
    """Evaluate `expr` over `values`; `now` is the clock, TODAY is its date in `timezone`.

    References look up `values[name]` first, then walk nested mappings along a dotted path.
    A missing value is blank.

    Raises:
        ExpressionError: `expr.type-mismatch` for values of the wrong kind, `expr.too-large`
            for text over MAX_TEXT_CHARS, `expr.budget-exceeded` after `max_steps` nodes.
    """
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    run = _Evaluation(values, moment, moment.astimezone(timezone).date(), max_steps)
    return run.run(expr.root)


class _Evaluation:
    """One evaluation's state: inputs, clock and the remaining budget (the `Context` protocol)."""

    __slots__ = ("values", "now", "today", "steps", "max_steps", "dispatch")

    def __init__(self, values: Mapping[str, Any], now: datetime, today: date, max_steps: int):
        self.values = values
        self.now = now
        self.today = today
        self.steps = 0
        self.max_steps = max_steps
        self.dispatch: dict[type, Callable[[Any], Any]] = {
            Literal: self._literal,
            Ref: self._ref,
            Unary: self._unary,
            Binary: self._binary,
            Membership: self._membership,
            Call: self._call,
        }

    def run(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            raise ExpressionError.at(
                node.pos,
                f"evaluation took more than {self.max_steps} steps",
                code="expr.budget-exceeded",
            )
        try:
            return self.dispatch[type(node)](node)
        except OverflowError as err:
            raise ExpressionError.at(node.pos, str(err), code="expr.out-of-range") from err
        except (TypeError, ValueError, InvalidOperation) as err:
            raise ExpressionError.at(node.pos, str(err), code="expr.type-mismatch") from err

    def text(self, parts: Sequence[str]) -> str:
        total = sum(len(p) for p in parts)
        if total > MAX_TEXT_CHARS:
            raise ExpressionError(
                f"text result of {total} characters exceeds the limit of {MAX_TEXT_CHARS}",
                code="expr.too-large",
            )
        return "".join(parts)

    def _literal(self, node: Literal) -> Any:
        return node.value

    def _ref(self, node: Ref) -> Any:
        if node.name == "$now":
            return self.now
        if node.name == "$today":
            return self.today
        if node.name in self.values:
            return v.normalise(self.values[node.name])
        current: Any = self.values
        for part in node.name.split("."):
            if not isinstance(current, Mapping) or part not in current:
                return None
            current = current[part]
        return v.normalise(current)

    def _unary(self, node: Unary) -> Any:
        value = self.run(node.operand)
        if node.op == "-":
            number = v.to_number(value)
            return None if number is None else -number
        flag = v.to_bool(value)
        return None if flag is None else not flag

    def _binary(self, node: Binary) -> Any:
        op = node.op
        if op == "and":
            return kleene_and(self, (node.left, node.right))
        if op == "or":
            return kleene_or(self, (node.left, node.right))
        left, right = self.run(node.left), self.run(node.right)
        if op == "&":
            return self.text([v.to_text(left) or "", v.to_text(right) or ""])
        if op in _ARITHMETIC:
            return _ARITHMETIC[op](v.to_number(left), v.to_number(right))
        if op == "=":
            return v.equal(left, right)
        if op == "<>":
            return not v.equal(left, right)
        order = v.compare(left, right)
        return None if order is None else _ORDERING[op](order)

    def _membership(self, node: Membership) -> bool:
        value = self.run(node.operand)
        found = value is not None and any(
            v.equal(value, item) for item in map(self.run, node.items) if item is not None
        )
        return found != node.negated

    def _call(self, node: Call) -> Any:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise ExpressionError.at(
                node.pos, f"unknown function {node.name}", code="expr.unknown-function"
            )
        function.check_arity(node)
        if function.lazy:
            return function.python(self, node.args)
        return function.python(self, [self.run(arg) for arg in node.args])


def _divide(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _arith(fn: Callable[[Decimal, Decimal], Decimal]) -> Callable[..., Decimal | None]:
    return lambda a, b: None if a is None or b is None else fn(a, b)


_ARITHMETIC: dict[str, Callable[[Decimal | None, Decimal | None], Decimal | None]] = {
    "+": _arith(lambda a, b: a + b),
    "-": _arith(lambda a, b: a - b),
    "*": _arith(lambda a, b: a * b),
    "/": _divide,
}
_ORDERING: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}

__all__ = ["DEFAULT_MAX_STEPS", "MAX_TEXT_CHARS", "evaluate"]

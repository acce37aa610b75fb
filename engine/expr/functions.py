"""The function registry: each `Function` holds its arity, type rule and Python implementation.

SQL implementations are registered against the same names in `engine.expr.sql` (which alone may
import SQLAlchemy); a test checks that every name in `FUNCTIONS` has one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from engine.expr import _values as v
from engine.expr._calendar import UNITS, as_datetime, date_add, date_diff
from engine.expr.errors import ExpressionError
from engine.expr.nodes import Call, Literal, Node
from engine.expr.types import ExprType, unify

T = ExprType
MAX_ROUND_DIGITS = 15


class Context(Protocol):
    """What a Python implementation may use from the running evaluation."""

    now: datetime
    today: date

    def run(self, node: Node) -> Any: ...

    def text(self, parts: Sequence[str]) -> str:
        """Join `parts`, refusing results over the text size cap."""
        ...


TypeRule = Callable[[Call, Sequence[ExprType]], ExprType]


@dataclass(frozen=True, slots=True)
class Function:
    """One function: `python(ctx, args)` gets values, or nodes when `lazy` (IF, AND, ...)."""

    name: str
    min_args: int
    max_args: int | None
    infer: TypeRule
    python: Callable[[Context, Sequence[Any]], Any]
    lazy: bool = False

    def check_arity(self, call: Call) -> None:
        count = len(call.args)
        if count >= self.min_args and (self.max_args is None or count <= self.max_args):
            return
        if self.max_args is None:
            wanted = f"at least {self.min_args}"
        elif self.min_args == self.max_args:
            wanted = str(self.min_args)
        else:
            wanted = f"{self.min_args} to {self.max_args}"
        raise ExpressionError.at(
            call.pos, f"{self.name} takes {wanted} argument(s), got {count}", code="expr.arity"
        )


# --- type rules ------------------------------------------------------------------------------


def expect(node: Node, actual: ExprType, wanted: ExprType, what: str) -> None:
    """Raise `expr.type-mismatch` at `node` unless `actual` fits `wanted`."""
    if not wanted.accepts(actual):
        raise ExpressionError.at(
            node.pos, f"{what} must be {wanted.name}, not {actual.name}", code="expr.type-mismatch"
        )


def unify_all(
    nodes: Sequence[Node], types: Sequence[ExprType], what: str, *, widen: bool = False
) -> ExprType:
    """The common type of values that `what` may return (or compare, when `widen`).

    Only comparisons widen a date to a datetime: a returned value keeps one exact type, so the
    Python and SQL evaluators cannot disagree on whether a date came back as a datetime.
    """
    result = T.NULL
    for node, kind in zip(nodes, types, strict=True):
        merged = unify(result, kind)
        if not widen and merged is not None and {result.kind, kind.kind} == {"date", "datetime"}:
            merged = None
        if merged is None:
            raise ExpressionError.at(
                node.pos,
                f"{what} mixes {result.name} and {kind.name}",
                code="expr.type-mismatch",
                hint='convert dates with DATEADD(x, 0, "hour") to mix them with datetimes',
            )
        result = merged
    return result


def unit_of(call: Call, index: int) -> str:
    """The literal unit argument of DATEADD/DATEDIF, validated at check time."""
    node = call.args[index]
    if not isinstance(node, Literal) or not isinstance(node.value, str):
        raise ExpressionError.at(
            node.pos, f'{call.name} needs a literal unit such as "day"', code="expr.invalid-unit"
        )
    unit = node.value.lower()
    if unit not in UNITS:
        raise ExpressionError.at(
            node.pos,
            f"unknown unit {node.value!r}",
            code="expr.invalid-unit",
            hint="one of " + ", ".join(UNITS),
        )
    return unit


def _all_of(wanted: ExprType, result: ExprType) -> TypeRule:
    def rule(call: Call, types: Sequence[ExprType]) -> ExprType:
        for i, (node, kind) in enumerate(zip(call.args, types, strict=True), start=1):
            expect(node, kind, wanted, f"argument {i} of {call.name}")
        return result

    return rule


def _returns(result: ExprType) -> TypeRule:
    return lambda call, types: result


def _if_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    expect(call.args[0], types[0], T.BOOLEAN, "the condition of IF")
    return unify_all(call.args[1:], types[1:], "IF")


def _ifs_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    if len(call.args) % 2:
        raise ExpressionError.at(call.pos, "IFS takes condition/value pairs", code="expr.arity")
    for i in range(0, len(call.args), 2):
        expect(call.args[i], types[i], T.BOOLEAN, f"condition {i // 2 + 1} of IFS")
    return unify_all(call.args[1::2], types[1::2], "IFS")


def _coalesce_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    return unify_all(call.args, types, call.name)


def _extreme_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    result = unify_all(call.args, types, call.name)
    if result.kind not in ("number", "text", "date", "datetime", "time", "null", "any"):
        raise ExpressionError.at(
            call.pos, f"{call.name} cannot order {result.name} values", code="expr.type-mismatch"
        )
    return result


def _round_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    return _all_of(T.NUMBER, T.NUMBER)(call, types)


def _dateadd_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    expect(call.args[0], types[0], T.DATETIME, "argument 1 of DATEADD")
    expect(call.args[1], types[1], T.NUMBER, "argument 2 of DATEADD")
    unit = unit_of(call, 2)
    if types[0].kind in ("any", "null"):
        return types[0]
    if types[0].kind == "date" and unit in ("hour", "minute", "second"):
        return T.DATETIME
    return types[0]


def _datedif_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    expect(call.args[0], types[0], T.DATETIME, "argument 1 of DATEDIF")
    expect(call.args[1], types[1], T.DATETIME, "argument 2 of DATEDIF")
    unit_of(call, 2)
    return T.NUMBER


def _part_rule(call: Call, types: Sequence[ExprType]) -> ExprType:
    expect(call.args[0], types[0], T.DATETIME, f"the argument of {call.name}")
    return T.NUMBER


# --- Python implementations ----------------------------------------------------------------


def _py_if(ctx: Context, nodes: Sequence[Node]) -> Any:
    if v.to_bool(ctx.run(nodes[0])):
        return ctx.run(nodes[1])
    return ctx.run(nodes[2]) if len(nodes) > 2 else None


def _py_ifs(ctx: Context, nodes: Sequence[Node]) -> Any:
    for i in range(0, len(nodes), 2):
        if v.to_bool(ctx.run(nodes[i])):
            return ctx.run(nodes[i + 1])
    return None


def kleene_and(ctx: Context, nodes: Sequence[Node]) -> bool | None:
    """Three-valued AND: FALSE wins, then blank, then TRUE."""
    result: bool | None = True
    for node in nodes:
        value = v.to_bool(ctx.run(node))
        if value is False:
            return False
        if value is None:
            result = None
    return result


def kleene_or(ctx: Context, nodes: Sequence[Node]) -> bool | None:
    """Three-valued OR: TRUE wins, then blank, then FALSE."""
    result: bool | None = False
    for node in nodes:
        value = v.to_bool(ctx.run(node))
        if value is True:
            return True
        if value is None:
            result = None
    return result


def _py_not(ctx: Context, args: Sequence[Any]) -> bool | None:
    value = v.to_bool(args[0])
    return None if value is None else not value


def _py_coalesce(ctx: Context, nodes: Sequence[Node]) -> Any:
    for node in nodes:
        value = ctx.run(node)
        if value is not None:
            return value
    return None


def _py_concat(ctx: Context, args: Sequence[Any]) -> str:
    return ctx.text([v.to_text(a) or "" for a in args])


def _text_fn(fn: Callable[[str], Any]) -> Callable[[Context, Sequence[Any]], Any]:
    def call(ctx: Context, args: Sequence[Any]) -> Any:
        text = v.to_text(args[0])
        return None if text is None else fn(text)

    return call


def _py_len(ctx: Context, args: Sequence[Any]) -> Decimal:
    return Decimal(len(v.to_text(args[0]) or ""))


def _py_contains(ctx: Context, args: Sequence[Any]) -> bool:
    text, part = (v.lower_ascii(v.to_text(a) or "") for a in args)
    return part in text


def _py_startswith(ctx: Context, args: Sequence[Any]) -> bool:
    text, part = (v.lower_ascii(v.to_text(a) or "") for a in args)
    return text.startswith(part)


def _py_round(ctx: Context, args: Sequence[Any]) -> Decimal | None:
    number = v.to_number(args[0])
    digits = v.to_number(args[1]) if len(args) > 1 else Decimal(0)
    if number is None:
        return None
    places = min(max(int(digits or 0), 0), MAX_ROUND_DIGITS)
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _py_abs(ctx: Context, args: Sequence[Any]) -> Decimal | None:
    number = v.to_number(args[0])
    return None if number is None else abs(number)


def _extreme(pick: Callable[[int], bool]) -> Callable[[Context, Sequence[Any]], Any]:
    def call(ctx: Context, args: Sequence[Any]) -> Any:
        present = [a for a in args if a is not None]
        if any(isinstance(a, datetime) for a in present):
            present = [as_datetime(a) for a in present]
        best = None
        for value in present:
            if best is None or pick(v.compare(value, best) or 0):
                best = value
        return best

    return call


def _py_date(ctx: Context, args: Sequence[Any]) -> date | None:
    parts = [v.to_number(a) for a in args]
    if any(p is None for p in parts):
        return None
    year, month, day = (int(p) for p in parts if p is not None)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _unit(value: Any) -> str:
    unit = str(value).lower()
    if unit not in UNITS:
        raise ExpressionError(f"unknown unit {value!r}", code="expr.invalid-unit")
    return unit


def _py_dateadd(ctx: Context, args: Sequence[Any]) -> date | None:
    start, amount, unit = v.to_temporal(args[0]), v.to_number(args[1]), _unit(args[2])
    if start is None or amount is None:
        return None
    return date_add(start, int(amount), unit)


def _py_datedif(ctx: Context, args: Sequence[Any]) -> Decimal | None:
    start, end, unit = v.to_temporal(args[0]), v.to_temporal(args[1]), _unit(args[2])
    if start is None or end is None:
        return None
    return Decimal(date_diff(start, end, unit))


def _part(fn: Callable[[date], int]) -> Callable[[Context, Sequence[Any]], Any]:
    def call(ctx: Context, args: Sequence[Any]) -> Decimal | None:
        value = v.to_temporal(args[0])
        return None if value is None else Decimal(fn(value))

    return call


def _fn(
    name: str, arity: tuple[int, int | None], infer: TypeRule, python: Any, *, lazy: bool = False
) -> tuple[str, Function]:
    return name, Function(name, arity[0], arity[1], infer, python, lazy)


FUNCTIONS: dict[str, Function] = dict(
    [
        _fn("IF", (2, 3), _if_rule, _py_if, lazy=True),
        _fn("IFS", (2, None), _ifs_rule, _py_ifs, lazy=True),
        _fn("AND", (1, None), _all_of(T.BOOLEAN, T.BOOLEAN), kleene_and, lazy=True),
        _fn("OR", (1, None), _all_of(T.BOOLEAN, T.BOOLEAN), kleene_or, lazy=True),
        _fn("NOT", (1, 1), _all_of(T.BOOLEAN, T.BOOLEAN), _py_not),
        _fn("ISBLANK", (1, 1), _returns(T.BOOLEAN), lambda ctx, a: v.is_blank(a[0])),
        _fn("BLANK", (0, 0), _returns(T.NULL), lambda ctx, a: None),
        _fn("COALESCE", (1, None), _coalesce_rule, _py_coalesce, lazy=True),
        _fn("CONCAT", (1, None), _all_of(T.TEXT, T.TEXT), _py_concat),
        _fn("LEN", (1, 1), _all_of(T.TEXT, T.NUMBER), _py_len),
        _fn("LOWER", (1, 1), _all_of(T.TEXT, T.TEXT), _text_fn(v.lower_ascii)),
        _fn("UPPER", (1, 1), _all_of(T.TEXT, T.TEXT), _text_fn(v.upper_ascii)),
        _fn("TRIM", (1, 1), _all_of(T.TEXT, T.TEXT), _text_fn(lambda s: s.strip(v.TRIM_CHARS))),
        _fn("CONTAINS", (2, 2), _all_of(T.TEXT, T.BOOLEAN), _py_contains),
        _fn("STARTSWITH", (2, 2), _all_of(T.TEXT, T.BOOLEAN), _py_startswith),
        _fn("ROUND", (1, 2), _round_rule, _py_round),
        _fn("ABS", (1, 1), _all_of(T.NUMBER, T.NUMBER), _py_abs),
        _fn("MIN", (1, None), _extreme_rule, _extreme(lambda c: c < 0)),
        _fn("MAX", (1, None), _extreme_rule, _extreme(lambda c: c > 0)),
        _fn("TODAY", (0, 0), _returns(T.DATE), lambda ctx, a: ctx.today),
        _fn("NOW", (0, 0), _returns(T.DATETIME), lambda ctx, a: ctx.now),
        _fn("DATE", (3, 3), _all_of(T.NUMBER, T.DATE), _py_date),
        _fn("DATEADD", (3, 3), _dateadd_rule, _py_dateadd),
        _fn("DATEDIF", (3, 3), _datedif_rule, _py_datedif),
        _fn("YEAR", (1, 1), _part_rule, _part(lambda d: d.year)),
        _fn("MONTH", (1, 1), _part_rule, _part(lambda d: d.month)),
        _fn("DAY", (1, 1), _part_rule, _part(lambda d: d.day)),
        _fn("WEEKDAY", (1, 1), _part_rule, _part(lambda d: d.isoweekday())),
    ]
)


__all__ = ["FUNCTIONS", "Context", "Function", "expect", "kleene_and", "kleene_or", "unify_all"]

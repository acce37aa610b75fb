"""`compile_sql`: an expression as a SQLAlchemy Core column expression, for SQLite and PostgreSQL.

This is the only module of the expression language that imports SQLAlchemy. Values reach the
database as bound parameters only; the few SQL fragments written here (units, formats) are fixed
engine constants. Per-dialect differences live in `_Dialect` subclasses, per-function SQL in the
`SQL_FUNCTIONS` registry keyed like `FUNCTIONS`. The module is long (a registry), not deep.

Datetime conventions: on SQLite a datetime is SQLAlchemy's text 'YYYY-MM-DD HH:MM:SS.ffffff'
(UTC) and a date 'YYYY-MM-DD'; on PostgreSQL datetimes are timestamptz, computed in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from engine.expr._calendar import CLOCK_UNITS
from engine.expr.checker import annotate
from engine.expr.errors import ExpressionError
from engine.expr.functions import FUNCTIONS, MAX_ROUND_DIGITS, unit_of
from engine.expr.nodes import Binary, Call, Expression, Literal, Membership, Node, Ref, Unary
from engine.expr.types import ExprType

Sql = ColumnElement[Any]
MAX_SQL_NODES = 20_000
T = ExprType
_PRECEDENCE = {"+": 7, "-": 7, "*": 8}  # SQLAlchemy's own, so custom ops group correctly
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TRIM = " \t\r\n"
_MICROS = {"day": 86_400_000_000, "week": 604_800_000_000}
_MICROS.update({unit: seconds * 1_000_000 for unit, seconds in CLOCK_UNITS.items()})


def compile_sql(
    expr: Expression,
    columns: Mapping[str, ColumnElement[Any]],
    *,
    dialect: str,
    now: datetime,
    timezone: tzinfo = UTC,
) -> ColumnElement[Any]:
    """Compile `expr` to a column expression over `columns` (reference name -> column).

    Reference types come from the columns' SQLAlchemy types. `now` (and TODAY, its date in
    `timezone`) become bound parameters, so SQL and Python agree on the clock.

    Raises:
        ExpressionError: any checker error, or `expr.unsupported-dialect`.
    """
    compiler = _compiler_for(expr, columns, dialect, now, timezone)
    result = compiler.compile(expr.root)
    return sa.type_coerce(result, compiler.dialect.result_type(compiler.kind(expr.root)))


def _compiler_for(
    expr: Expression,
    columns: Mapping[str, ColumnElement[Any]],
    dialect: str,
    now: datetime,
    timezone: tzinfo,
) -> _Compiler:
    if dialect not in _DIALECTS:
        raise ExpressionError(
            f"no SQL compiler for dialect {dialect!r}", code="expr.unsupported-dialect"
        )
    types = annotate(expr, {name: type_of(column) for name, column in columns.items()})
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    today = moment.astimezone(timezone).date()
    return _Compiler(columns, types, _DIALECTS[dialect], moment, today)


def compile_filter(
    expr: Expression,
    columns: Mapping[str, ColumnElement[Any]],
    *,
    dialect: str,
    now: datetime,
    timezone: tzinfo = UTC,
) -> ColumnElement[bool]:
    """Compile a boolean `expr` as a WHERE condition: it keeps the rows where `expr` is TRUE.

    A WHERE clause drops blank and FALSE alike, so at the top and under AND/OR an `=` against
    a non-blank literal, and `in`, compile to plain comparisons that indexes can serve, instead
    of the null-safe forms `compile_sql` needs to return exact values.

    Raises:
        ExpressionError: as `compile_sql`, and `expr.type-mismatch` when `expr` is not boolean.
    """
    compiler = _compiler_for(expr, columns, dialect, now, timezone)
    kind = compiler.kind(expr.root)
    if kind.kind not in ("boolean", "null"):
        raise ExpressionError(
            f"a filter must be a condition, not {kind}", code="expr.type-mismatch"
        )
    return compiler.predicate(expr.root)


def type_of(column: ColumnElement[Any]) -> ExprType:
    """The expression type of a column, from its SQLAlchemy type."""
    kind = column.type
    for sql_type, expr_type in _TYPE_MAP:
        if isinstance(kind, sql_type):
            return expr_type
    return T.ANY


_TYPE_MAP: tuple[tuple[type[Any], ExprType], ...] = (
    (sa.Boolean, T.BOOLEAN),
    (sa.DateTime, T.DATETIME),
    (sa.Date, T.DATE),
    (sa.Time, T.TIME),
    (sa.Numeric, T.NUMBER),
    (sa.Integer, T.NUMBER),
    (sa.String, T.TEXT),
)


# --- dialects ------------------------------------------------------------------------------


class _Dialect:
    """What differs between backends; methods take and return SQL expressions."""

    name = ""

    def result_type(self, kind: ExprType) -> sa.types.TypeEngine[Any]:
        return _RESULT_TYPES.get(kind.kind, sa.types.NullType())

    def datetime_literal(self, value: datetime) -> Sql:
        raise NotImplementedError

    def promote(self, value: Sql) -> Sql:
        """A date as the datetime at midnight UTC."""
        raise NotImplementedError

    def canonical(self, value: Sql, kind: ExprType) -> Sql:
        """Text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) of a date or datetime."""
        raise NotImplementedError

    def epoch_micros(self, start: Sql, end: Sql, kinds: tuple[ExprType, ExprType]) -> Sql:
        raise NotImplementedError

    def date_add(self, value: Sql, kind: ExprType, amount: Sql, unit: str) -> Sql:
        raise NotImplementedError

    def make_date(self, year: Sql, month: Sql, day: Sql) -> Sql:
        raise NotImplementedError

    def part(self, value: Sql, kind: ExprType, part: str) -> Sql:
        raise NotImplementedError

    def integer(self, value: Sql) -> Sql:
        return sa.cast(value, sa.Integer)

    def divide(self, left: Sql, right: Sql) -> Sql:
        raise NotImplementedError

    def fold(self, text: Sql, upper: bool = False) -> Sql:
        raise NotImplementedError

    def ordered(self, text: Sql) -> Sql:
        """Text set up to compare by code point, as Python does."""
        return text

    def round(self, number: Sql, digits: Sql) -> Sql:
        return sa.func.round(number, digits)

    def extreme(self, args: Sequence[Sql], largest: bool) -> Sql:
        raise NotImplementedError

    def length(self, text: Sql) -> Sql:
        return sa.func.length(text)

    def position(self, text: Sql, part: Sql) -> Sql:
        raise NotImplementedError

    def trim(self, text: Sql) -> Sql:
        return sa.func.trim(text, _text(_TRIM))


class _SQLite(_Dialect):
    name = "sqlite"

    def datetime_literal(self, value: datetime) -> Sql:
        return sa.literal(value.replace(tzinfo=None), sa.DateTime())

    def promote(self, value: Sql) -> Sql:
        return value.op("||", precedence=6)(_text(" 00:00:00.000000"))

    def canonical(self, value: Sql, kind: ExprType) -> Sql:
        return self.promote(value) if kind.kind == "date" else value

    def epoch_micros(self, start: Sql, end: Sql, kinds: tuple[ExprType, ExprType]) -> Sql:
        a, b = self.canonical(start, kinds[0]), self.canonical(end, kinds[1])
        seconds = _seconds(b) - _seconds(a)
        micros = _sqlite_int(sa.func.substr(b, 21)) - _sqlite_int(sa.func.substr(a, 21))
        return seconds * _int(1_000_000) + micros

    def date_add(self, value: Sql, kind: ExprType, amount: Sql, unit: str) -> Sql:
        # printf() turns a NULL amount into 0, so a blank amount is handled first; a blank
        # value already gives NULL through date()/strftime().
        moved = self._moved(value, kind, amount, unit)
        return sa.case((amount.is_(None), sa.null()), else_=moved)

    def _moved(self, value: Sql, kind: ExprType, amount: Sql, unit: str) -> Sql:
        count = self.integer(amount)
        if unit in ("month", "year"):
            return self._add_months(value, count * _int(12) if unit == "year" else count)
        if kind.kind == "date" and unit in ("day", "week"):
            days = count * _int(7) if unit == "week" else count
            return sa.func.date(value, sa.func.printf(_text("%d days"), days))
        text = self.canonical(value, kind)
        step = _int(CLOCK_UNITS.get(unit, 0) or _MICROS[unit] // 1_000_000)
        modifier = sa.func.printf(_text("%d seconds"), count * step)
        moved = sa.func.strftime(_text("%Y-%m-%d %H:%M:%S"), text, modifier)
        return moved.op("||", precedence=6)(sa.func.substr(text, 20))

    def _add_months(self, value: Sql, months: Sql) -> Sql:
        # date()'s own '+N months' overflows (Jan 31 + 1 month = Mar 2), so move the first of
        # the month instead, then clamp the day to the target month's length.
        first = sa.func.date(
            value, _text("start of month"), sa.func.printf(_text("%d months"), months)
        )
        last = _sqlite_int(sa.func.strftime(_text("%d"), first, _text("+1 month"), _text("-1 day")))
        day = sa.func.min(_sqlite_int(sa.func.strftime(_text("%d"), value)), last)
        moved = sa.func.date(first, sa.func.printf(_text("%d days"), day - _int(1)))
        return moved.op("||", precedence=6)(sa.func.substr(value, 11))

    def make_date(self, year: Sql, month: Sql, day: Sql) -> Sql:
        text = sa.func.printf(_text("%04d-%02d-%02d"), year, month, day)
        # date() passes '2023-02-29' through unchanged; a '+0 days' modifier normalises it.
        normalised = sa.func.date(text, _text("+0 days"))
        valid = sa.and_(year.between(_int(1), _int(9999)), normalised == text)
        return sa.case((valid, text), else_=sa.null())

    def part(self, value: Sql, kind: ExprType, part: str) -> Sql:
        if part == "weekday":
            sunday_first = _sqlite_int(sa.func.strftime(_text("%w"), value))
            return (sunday_first + _int(6)) % _int(7) + _int(1)
        fmt = {"year": "%Y", "month": "%m", "day": "%d"}[part]
        return _sqlite_int(sa.func.strftime(_text(fmt), value))

    def divide(self, left: Sql, right: Sql) -> Sql:
        return sa.cast(left, sa.Float).op("/", precedence=8)(sa.func.nullif(right, _int(0)))

    def fold(self, text: Sql, upper: bool = False) -> Sql:
        # SQLite's built-in lower()/upper() change ASCII letters only: the documented rule.
        return sa.func.upper(text) if upper else sa.func.lower(text)

    def extreme(self, args: Sequence[Sql], largest: bool) -> Sql:
        if len(args) == 1:
            return args[0]
        pick = sa.func.max if largest else sa.func.min
        # SQLite's scalar min()/max() return NULL if any argument is NULL; blanks are ignored
        # here, so each slot falls back to the other arguments.
        slots = [sa.func.coalesce(a, *(b for b in args if b is not a)) for a in args]
        return pick(*slots)

    def position(self, text: Sql, part: Sql) -> Sql:
        return sa.func.instr(text, part)


class _PostgreSQL(_Dialect):
    name = "postgresql"

    def datetime_literal(self, value: datetime) -> Sql:
        return sa.literal(value, sa.DateTime(timezone=True))

    def promote(self, value: Sql) -> Sql:
        return sa.func.timezone(_text("UTC"), sa.cast(value, sa.DateTime()))

    def _naive(self, value: Sql, kind: ExprType) -> Sql:
        """A UTC wall-clock `timestamp` for a date or timestamptz."""
        if kind.kind == "date":
            return sa.cast(value, sa.DateTime())
        return sa.func.timezone(_text("UTC"), value)

    def canonical(self, value: Sql, kind: ExprType) -> Sql:
        return sa.func.to_char(self._naive(value, kind), _text("YYYY-MM-DD HH24:MI:SS.US"))

    def epoch_micros(self, start: Sql, end: Sql, kinds: tuple[ExprType, ExprType]) -> Sql:
        if kinds[0].kind == kinds[1].kind == "datetime":
            span = end - start  # timestamptz difference is absolute: no zone conversion needed
        else:
            span = self._naive(end, kinds[1]) - self._naive(start, kinds[0])
        seconds = sa.extract("epoch", span)
        return sa.cast(seconds * _int(1_000_000), sa.BigInteger)

    def date_add(self, value: Sql, kind: ExprType, amount: Sql, unit: str) -> Sql:
        slot = ("year", "month", "week", "day", "hour", "minute", "second").index(unit)
        args: list[Sql] = [sa.literal_column("0")] * 7
        args[slot] = self.integer(amount)
        interval = sa.func.make_interval(*args)
        if kind.kind == "date" and unit not in CLOCK_UNITS:
            return sa.cast(value.op("+", precedence=7)(interval), sa.Date)
        if kind.kind == "datetime" and unit in CLOCK_UNITS:
            return value.op("+", precedence=7)(interval)  # clock time is absolute: no zone
        moved = self._naive(value, kind).op("+", precedence=7)(interval)
        return sa.func.timezone(_text("UTC"), moved)

    def integer(self, value: Sql) -> Sql:
        return sa.cast(sa.func.trunc(sa.cast(value, sa.Numeric)), sa.Integer)

    def make_date(self, year: Sql, month: Sql, day: Sql) -> Sql:
        y, m, d = self.integer(year), self.integer(month), self.integer(day)
        safe_year = sa.func.least(sa.func.greatest(y, _int(1)), _int(9999))
        base = sa.func.make_date(safe_year, _int(1), _int(1))
        offset = sa.func.make_interval(
            sa.literal_column("0"), m - _int(1), sa.literal_column("0"), d - _int(1)
        )
        moved = sa.cast(base.op("+", precedence=7)(offset), sa.Date)
        valid = sa.and_(
            y.between(_int(1), _int(9999)),
            self.part(moved, T.DATE, "year") == y,
            self.part(moved, T.DATE, "month") == m,
            self.part(moved, T.DATE, "day") == d,
        )
        return sa.case((valid, moved), else_=sa.null())

    def part(self, value: Sql, kind: ExprType, part: str) -> Sql:
        field = "isodow" if part == "weekday" else part
        return sa.cast(sa.extract(field, self._naive(value, kind)), sa.Integer)

    def divide(self, left: Sql, right: Sql) -> Sql:
        return sa.cast(left, sa.Numeric).op("/", precedence=8)(sa.func.nullif(right, _int(0)))

    def fold(self, text: Sql, upper: bool = False) -> Sql:
        # translate() keeps the rule ASCII-only whatever the database's locale.
        source, target = (_UPPER.lower(), _UPPER) if upper else (_UPPER, _UPPER.lower())
        return sa.func.translate(text, _text(source), _text(target))

    def ordered(self, text: Sql) -> Sql:
        return text.collate("C")

    def round(self, number: Sql, digits: Sql) -> Sql:
        return sa.func.round(sa.cast(number, sa.Numeric), digits)

    def extreme(self, args: Sequence[Sql], largest: bool) -> Sql:
        return (sa.func.greatest if largest else sa.func.least)(*args)

    def length(self, text: Sql) -> Sql:
        return sa.func.char_length(text)

    def position(self, text: Sql, part: Sql) -> Sql:
        return sa.func.strpos(text, part)

    def trim(self, text: Sql) -> Sql:
        return sa.func.btrim(text, _text(_TRIM))


_DIALECTS: dict[str, _Dialect] = {"sqlite": _SQLite(), "postgresql": _PostgreSQL()}
_RESULT_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "text": sa.String(),
    "number": sa.Numeric(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "datetime": sa.DateTime(timezone=True),
    "time": sa.Time(),
}


def _has_value(node: Binary) -> bool:
    """True when one side is a non-blank literal: then plain `=` is TRUE exactly when `=` is."""
    return any(
        isinstance(side, Literal) and side.value is not None for side in (node.left, node.right)
    )


def _text(value: str) -> Sql:
    return sa.literal(value, sa.String())


def _int(value: int) -> Sql:
    return sa.literal(value, sa.Integer())


def _sqlite_int(value: Sql) -> Sql:
    return sa.cast(value, sa.Integer)


def _seconds(text: Sql) -> Sql:
    return _sqlite_int(sa.func.strftime(_text("%s"), text))


# --- the compiler --------------------------------------------------------------------------


class _Compiler:
    """Walks the tree once; `types` holds every node's static type (from the checker)."""

    def __init__(
        self,
        columns: Mapping[str, ColumnElement[Any]],
        types: dict[int, ExprType],
        dialect: _Dialect,
        now: datetime,
        today: date,
    ) -> None:
        self.columns = columns
        self.types = types
        self.dialect = dialect
        self.now = now
        self.today = today
        self.rules: dict[type, Callable[[Any], Sql]] = {
            Literal: self._literal,
            Ref: self._ref,
            Unary: self._unary,
            Binary: self._binary,
            Membership: self._membership,
            Call: self._call,
        }

    def compile(self, node: Node) -> Sql:
        return self.rules[type(node)](node)

    def kind(self, node: Node) -> ExprType:
        return self.types[id(node)]

    def compile_as(self, node: Node, kind: ExprType) -> Sql:
        """Compile `node`, widening a date to a datetime when `kind` asks for one."""
        sql = self.compile(node)
        if kind.kind == "datetime" and self.kind(node).kind == "date":
            return self.dialect.promote(sql)
        return sql

    def common(self, nodes: Sequence[Node], *, ordered: bool = True) -> list[Sql]:
        """Compile nodes of one unified type (dates widened when mixed with datetimes).

        `ordered=False` skips the code-point collation: equality needs none, and a collated
        column cannot use the column's own index on PostgreSQL.
        """
        kinds = {self.kind(n).kind for n in nodes}
        target = T.DATETIME if "datetime" in kinds else T.ANY
        sqls = [self.compile_as(n, target) for n in nodes]
        if ordered and "text" in kinds:
            sqls = [self.dialect.ordered(s) for s in sqls]
        return sqls

    def predicate(self, node: Node) -> Sql:
        """`node` for a WHERE clause, where blank and FALSE both drop the row."""
        if isinstance(node, Binary) and node.op in ("and", "or"):
            join = sa.and_ if node.op == "and" else sa.or_
            return join(self.predicate(node.left), self.predicate(node.right))
        if isinstance(node, Call) and node.name in ("AND", "OR"):
            join = sa.and_ if node.name == "AND" else sa.or_
            return join(*(self.predicate(arg) for arg in node.args))
        if isinstance(node, Binary) and node.op == "=" and _has_value(node):
            left, right = self.common((node.left, node.right), ordered=False)
            return left == right
        if isinstance(node, Membership) and not node.negated:
            operand, *items = self.common((node.operand, *node.items), ordered=False)
            return operand.in_(items)
        return self.compile(node)

    def now_sql(self) -> Sql:
        return self.dialect.datetime_literal(self.now)

    def _literal(self, node: Literal) -> Sql:
        value = node.value
        if value is None:
            return sa.null()
        if isinstance(value, bool):
            return sa.true() if value else sa.false()
        if isinstance(value, Decimal):
            return sa.literal(value, sa.Numeric())
        return _text(value)

    def _ref(self, node: Ref) -> Sql:
        # $now and $today always come from the injected clock, as in the Python evaluator.
        if node.name == "$now":
            return self.now_sql()
        if node.name == "$today":
            return sa.literal(self.today, sa.Date())
        return self.columns[node.name]

    def _unary(self, node: Unary) -> Sql:
        operand = self.compile(node.operand)
        return sa.not_(operand) if node.op == "not" else operand.op("*", precedence=8)(_int(-1))

    def _binary(self, node: Binary) -> Sql:
        op = node.op
        if op in ("and", "or"):
            join = sa.and_ if op == "and" else sa.or_
            return join(self.compile(node.left), self.compile(node.right))
        if op == "&":
            return _concat([self.compile(node.left), self.compile(node.right)])
        if op == "/":
            return self.dialect.divide(self.compile(node.left), self.compile(node.right))
        if op in "+-*":
            return self.compile(node.left).op(op, precedence=_PRECEDENCE[op])(
                self.compile(node.right)
            )
        left, right = self.common((node.left, node.right), ordered=op not in ("=", "<>"))
        if op == "=":
            return left.is_not_distinct_from(right)
        if op == "<>":
            return left.is_distinct_from(right)
        return left.op(op, precedence=5, is_comparison=True)(right)

    def _membership(self, node: Membership) -> Sql:
        operand, *items = self.common((node.operand, *node.items), ordered=False)
        found = sa.func.coalesce(operand.in_(items), sa.false())
        return sa.not_(found) if node.negated else found

    def _call(self, node: Call) -> Sql:
        sql = SQL_FUNCTIONS[node.name](self, node)
        self._check_size(node, sql)
        return sql

    def _check_size(self, node: Call, sql: Sql) -> None:
        """Refuse SQL that grew too big: some functions repeat their argument (SQLite's month
        arithmetic uses it five times), so nesting them grows the statement geometrically."""
        size = 0
        for _ in visitors.iterate(sql):
            size += 1
            if size > MAX_SQL_NODES:
                raise ExpressionError.at(
                    node.pos,
                    f"the SQL for this expression exceeds {MAX_SQL_NODES} elements",
                    code="expr.too-large",
                    hint="nest fewer DATEADD/DATEDIF/DATE calls",
                )


def _concat(parts: Sequence[Sql]) -> Sql:
    result: Sql = sa.func.coalesce(parts[0], _text(""))
    for part in parts[1:]:
        result = result.op("||", precedence=6)(sa.func.coalesce(part, _text("")))
    return result


# --- SQL implementations of the functions ---------------------------------------------------

SqlRule = Callable[[_Compiler, Call], Sql]
SQL_FUNCTIONS: dict[str, SqlRule] = {}


def sql_function(*names: str) -> Callable[[SqlRule], SqlRule]:
    """Register the SQL implementation of the functions `names` (keys of `FUNCTIONS`)."""

    def register(rule: SqlRule) -> SqlRule:
        for name in names:
            SQL_FUNCTIONS[name] = rule
        return rule

    return register


def _args(c: _Compiler, call: Call) -> list[Sql]:
    return [c.compile(arg) for arg in call.args]


@sql_function("IF", "IFS")
def _if(c: _Compiler, call: Call) -> Sql:
    result = c.kind(call)
    args = list(call.args) if call.name == "IFS" else [call.args[0], call.args[1]]
    pairs = [
        (c.compile(args[i]), c.compile_as(args[i + 1], result)) for i in range(0, len(args), 2)
    ]
    otherwise: Sql = sa.null()
    if call.name == "IF" and len(call.args) == 3:
        otherwise = c.compile_as(call.args[2], result)
    return sa.case(*pairs, else_=otherwise)


@sql_function("AND", "OR")
def _logical(c: _Compiler, call: Call) -> Sql:
    return (sa.and_ if call.name == "AND" else sa.or_)(*_args(c, call))


@sql_function("NOT")
def _not(c: _Compiler, call: Call) -> Sql:
    return sa.not_(c.compile(call.args[0]))


@sql_function("ISBLANK")
def _isblank(c: _Compiler, call: Call) -> Sql:
    value = c.compile(call.args[0])
    if c.kind(call.args[0]).kind == "text":
        return sa.or_(value.is_(None), value == _text(""))
    return value.is_(None)


@sql_function("BLANK")
def _blank(c: _Compiler, call: Call) -> Sql:
    return sa.null()


@sql_function("COALESCE")
def _coalesce(c: _Compiler, call: Call) -> Sql:
    result = c.kind(call)
    return sa.func.coalesce(*(c.compile_as(arg, result) for arg in call.args))


@sql_function("CONCAT")
def _concat_fn(c: _Compiler, call: Call) -> Sql:
    return _concat(_args(c, call))


@sql_function("LEN")
def _len(c: _Compiler, call: Call) -> Sql:
    return sa.func.coalesce(c.dialect.length(c.compile(call.args[0])), _int(0))


@sql_function("LOWER", "UPPER")
def _case(c: _Compiler, call: Call) -> Sql:
    return c.dialect.fold(c.compile(call.args[0]), upper=call.name == "UPPER")


@sql_function("TRIM")
def _trim(c: _Compiler, call: Call) -> Sql:
    return c.dialect.trim(c.compile(call.args[0]))


def _folded(c: _Compiler, call: Call) -> tuple[Sql, Sql]:
    text, part = (c.dialect.fold(sa.func.coalesce(a, _text(""))) for a in _args(c, call))
    return text, part


@sql_function("CONTAINS")
def _contains(c: _Compiler, call: Call) -> Sql:
    text, part = _folded(c, call)
    return c.dialect.position(text, part) > _int(0)


@sql_function("STARTSWITH")
def _startswith(c: _Compiler, call: Call) -> Sql:
    text, part = _folded(c, call)
    return sa.func.substr(text, _int(1), c.dialect.length(part)) == part


@sql_function("ROUND")
def _round(c: _Compiler, call: Call) -> Sql:
    number = c.compile(call.args[0])
    if len(call.args) == 1:
        return c.dialect.round(number, _int(0))
    digits = c.dialect.integer(sa.func.coalesce(c.compile(call.args[1]), _int(0)))
    low, high = _int(0), _int(MAX_ROUND_DIGITS)
    bounded = sa.case((digits < low, low), (digits > high, high), else_=digits)
    return c.dialect.round(number, bounded)


@sql_function("ABS")
def _abs(c: _Compiler, call: Call) -> Sql:
    return sa.func.abs(c.compile(call.args[0]))


@sql_function("MIN", "MAX")
def _extreme(c: _Compiler, call: Call) -> Sql:
    return c.dialect.extreme(c.common(call.args), largest=call.name == "MAX")


@sql_function("TODAY")
def _today(c: _Compiler, call: Call) -> Sql:
    return sa.literal(c.today, sa.Date())


@sql_function("NOW")
def _now(c: _Compiler, call: Call) -> Sql:
    return c.now_sql()


@sql_function("DATE")
def _date(c: _Compiler, call: Call) -> Sql:
    year, month, day = (c.dialect.integer(a) for a in _args(c, call))
    return c.dialect.make_date(year, month, day)


@sql_function("DATEADD")
def _dateadd(c: _Compiler, call: Call) -> Sql:
    value, amount = c.compile(call.args[0]), c.compile(call.args[1])
    unit = unit_of(call, 2)
    return c.dialect.date_add(value, c.kind(call.args[0]), amount, unit)


@sql_function("DATEDIF")
def _datedif(c: _Compiler, call: Call) -> Sql:
    start, end = c.compile(call.args[0]), c.compile(call.args[1])
    kinds = (c.kind(call.args[0]), c.kind(call.args[1]))
    unit = unit_of(call, 2)
    if unit in ("month", "year"):
        months = _whole_months(c, start, end, kinds)
        return months.op("/", precedence=8)(_int(12)) if unit == "year" else months
    micros = c.dialect.epoch_micros(start, end, kinds)
    return micros.op("/", precedence=8)(sa.literal(_MICROS[unit], sa.BigInteger()))


def _whole_months(c: _Compiler, start: Sql, end: Sql, kinds: tuple[ExprType, ExprType]) -> Sql:
    a = c.dialect.ordered(c.dialect.canonical(start, kinds[0]))
    b = c.dialect.ordered(c.dialect.canonical(end, kinds[1]))

    def number(text: Sql, begin: int, length: int) -> Sql:
        return sa.cast(sa.func.substr(text, _int(begin), _int(length)), sa.Integer)

    months = (number(b, 1, 4) - number(a, 1, 4)) * _int(12) + number(b, 6, 2) - number(a, 6, 2)
    rest_a = c.dialect.ordered(sa.func.substr(a, _int(9)))
    rest_b = c.dialect.ordered(sa.func.substr(b, _int(9)))
    forward = months - sa.case((rest_b < rest_a, _int(1)), else_=_int(0))
    backward = months + sa.case((rest_b > rest_a, _int(1)), else_=_int(0))
    return sa.case((a <= b, forward), else_=backward)


def _part_rule(part: str) -> SqlRule:
    def rule(c: _Compiler, call: Call) -> Sql:
        return c.dialect.part(c.compile(call.args[0]), c.kind(call.args[0]), part)

    return rule


for _name in ("YEAR", "MONTH", "DAY", "WEEKDAY"):
    SQL_FUNCTIONS[_name] = _part_rule(_name.lower())

if set(SQL_FUNCTIONS) != set(FUNCTIONS):  # pragma: no cover - caught by the registry test
    raise RuntimeError("SQL_FUNCTIONS and FUNCTIONS disagree")

__all__ = ["compile_filter", "SQL_FUNCTIONS", "compile_sql", "sql_function", "type_of"]

"""`compile_report`: a `ReportSpec` checked against its forms, ready to become one SELECT.

The statement has two levels. The row level selects, from the dataset's joined tables, one
column per dimension (grains and buckets computed) and one input per aggregate measure (the
field, wrapped in CASE WHEN for a conditional measure). The outer level groups those columns
and aggregates them, computes calculated measures over the aggregates, applies `having`,
sort and limit. Grouping by plain column references of a subquery keeps bound parameters out
of GROUP BY (PostgreSQL matches GROUP BY expressions textually, and parameters differ), and
both databases flatten the subquery, so it costs nothing.

A report without measures is a detail listing: the row level alone, not grouped.

Everything that depends on the actor (scope conditions, field masks) or on the request
(clock, dashboard filters, drill values) is added by `CompiledReport.statement`, which the
runner calls per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import DefinitionError, Problem
from engine.expr import Expression, ExpressionError, ExprType, check, parse, references
from engine.expr.nodes import Call, Ref
from engine.forms.listing import BOOLEAN, CHOICE, DATE, DATETIME, ID, NUMBER, TEXT, TIME
from engine.forms.spec import FormSpec
from engine.labels import label_text
from engine.reports.blend import CompiledBlend, compile_blend
from engine.reports.dataset import SCALAR_FAMILIES, Column, Dataset, build_dataset
from engine.reports.dimensions import is_temporal, zone_of
from engine.reports.measures import (
    AGGREGATE_UNSUPPORTED,
    NOT_AGGREGATABLE,
    accepts,
    result_type,
    supported,
)
from engine.reports.result import ColumnType, ResultColumn
from engine.reports.spec import Dimension, Measure, ReportSpec
from engine.reports.worktime import NO_CALENDARS, Calendars, WorktimeCall, bind, extract, has_calls

BAD_EXPR = "report.bad-expr"
GRAIN_NOT_DATE = "report.grain-not-date"
BUCKETS_NOT_NUMBER = "report.buckets-not-number"
UNKNOWN_KEY = "report.unknown-key"
DUPLICATE_KEY = "report.duplicate-key"
_CHECK_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReportExpr:
    """A parsed expression with the dataset columns its names resolve to."""

    expression: Expression
    columns: Mapping[str, Column]
    where: str
    worktime: tuple[WorktimeCall, ...] = ()  # WORKTIMEADD calls, now `$worktime<n>` refs


@dataclass(frozen=True, slots=True)
class CompiledDimension:
    key: str
    column: ResultColumn
    source: Column | None  # a field dimension
    expr: ReportExpr | None  # an expression dimension
    grain: str | None
    buckets: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class CompiledMeasure:
    key: str
    column: ResultColumn
    aggregate: str | None
    source: Column | None  # the aggregated field (None: count rows)
    filter: ReportExpr | None  # conditional aggregate
    expr: Expression | None  # calculated over other measures
    value: ReportExpr | None = None  # a per-row expression aggregated instead of a field


@dataclass(frozen=True, slots=True)
class CompiledReport:
    """A checked report: dataset, dimensions and measures resolved, SQL built per request."""

    spec: ReportSpec
    app: str
    form: str
    dialect: str
    zone: ZoneInfo
    dataset: Dataset
    dimensions: tuple[CompiledDimension, ...]
    measures: tuple[CompiledMeasure, ...]
    where: tuple[ReportExpr, ...]
    having: tuple[Expression, ...]
    columns: tuple[ResultColumn, ...]
    clock_free: bool = False  # no expression reads NOW() or TODAY()
    blend: CompiledBlend | None = None  # further populations (engine/reports/blend.py)
    calendars: Calendars = NO_CALENDARS  # the app's, when an expression calls WORKTIMEADD
    # Statements built for requests without conditions, by limit (see runner._prepare).
    statements: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def forms(self) -> frozenset[str]:
        """Every form the query reads (the base first needs `read`; joins too)."""
        own = frozenset(source.form for source in self.dataset.sources.values())
        return own | self.blend.forms if self.blend is not None else own

    def reads(self) -> frozenset[tuple[str, str]]:
        """(form, field) pairs the query reads: each must be visible to the actor."""
        found: set[tuple[str, str]] = set()
        for dimension in self.dimensions:
            found.update(_reads(dimension.source, dimension.expr))
        for measure in self.measures:
            found.update(_reads(measure.source, measure.filter))
            found.update(_reads(None, measure.value))
        for item in self.where:
            found.update(_reads(None, item))
        for population in self.blend.populations if self.blend is not None else ():
            found.update(population.report.reads())
        return frozenset(found)

    @property
    def aggregated(self) -> bool:
        return bool(self.measures)


def _reads(column: Column | None, expr: ReportExpr | None) -> set[tuple[str, str]]:
    found = set(column.reads) if column is not None else set()
    if expr is not None:
        for item in expr.columns.values():
            found.update(item.reads)
    return found


def compile_report(
    spec: ReportSpec,
    *,
    app: str,
    forms: Mapping[str, FormSpec],
    dialect: str,
    timezone: str | None = None,
    calendars: Calendars = NO_CALENDARS,
) -> CompiledReport:
    """Check `spec` against the app's forms (by key) and resolve it for `dialect`.

    `timezone` (an IANA name) overrides the report's own for date grains and date filters.

    Raises:
        DefinitionError: every problem found, each with its JSON pointer into the report
            (`/dimensions/1/grain`); codes `report.*`.
    """
    zone = zone_of(timezone or spec.timezone, dialect=dialect, where="/timezone")
    dataset = build_dataset(spec.dataset, app=app, forms=forms, dialect=dialect)
    problems: list[Problem] = []
    _unique_keys(spec, problems)
    dimensions = _collect(problems, spec.dimensions, lambda d, i: _dimension(dataset, d, i))
    measures = _collect(problems, spec.measures, lambda m, i: _measure(dataset, m, i, dialect))
    staged = [(i, x) for i, x in enumerate(spec.filters)]
    where = _collect(
        problems,
        [x for _, x in staged if x.stage == "where"],
        lambda x, _: _expr(dataset, x.expr, f"/filters/{spec.filters.index(x)}/expr"),
    )
    having = _collect(
        problems,
        [x for _, x in staged if x.stage == "having"],
        lambda x, _: _parsed(x.expr, f"/filters/{spec.filters.index(x)}/expr"),
    )
    dimensions, measures, where = bind(dimensions, measures, where, calendars, problems)
    if problems:
        raise DefinitionError(problems)
    compiled = CompiledReport(
        spec=spec,
        app=app,
        form=dataset.base.form,
        dialect=dialect,
        zone=zone,
        dataset=dataset,
        dimensions=tuple(dimensions),
        measures=tuple(measures),
        where=tuple(where),
        having=tuple(having),
        columns=tuple(d.column for d in dimensions) + tuple(m.column for m in measures),
        clock_free=not any(_reads_clock(e) for e in _expressions(dimensions, measures, where))
        and not has_calls(dimensions, measures, where),
        calendars=calendars,
    )
    if spec.blend:
        compiled = compile_blend(compiled, forms=forms, compile_report=compile_report)
    _check_outer(compiled, problems)
    if problems:
        raise DefinitionError(problems)
    return compiled


def _expressions(
    dimensions: Sequence[CompiledDimension],
    measures: Sequence[CompiledMeasure],
    where: Sequence[ReportExpr],
) -> list[Expression]:
    found = [d.expr.expression for d in dimensions if d.expr is not None]
    for measure in measures:
        found += [x.expression for x in (measure.filter, measure.value) if x is not None]
    return found + [x.expression for x in where]


def _reads_clock(expression: Expression) -> bool:
    stack: list[Any] = [expression.root]
    while stack:
        node = stack.pop()
        if isinstance(node, Call) and node.name in ("NOW", "TODAY"):
            return True
        if isinstance(node, Ref) and node.name in ("$now", "$today"):
            return True
        for value in (getattr(node, name) for name in getattr(node, "__slots__", ())):
            if isinstance(value, tuple):
                stack.extend(value)
            elif hasattr(value, "__slots__") and not isinstance(value, str):
                stack.append(value)
    return False


def _collect(
    problems: list[Problem], items: Sequence[Any], make: Callable[[Any, int], Any]
) -> list[Any]:
    """`make(item, index)` for each item; the problems of all of them are gathered."""
    made = []
    for index, item in enumerate(items):
        try:
            made.append(make(item, index))
        except DefinitionError as err:
            problems.extend(err.problems)
    return made


def _unique_keys(spec: ReportSpec, problems: list[Problem]) -> None:
    seen: set[str] = set()
    items = [("dimensions", d.key) for d in spec.dimensions] + [
        ("measures", m.key) for m in spec.measures
    ]
    for index, (kind, key) in enumerate(items):
        if key in seen:
            position = index if kind == "dimensions" else index - len(spec.dimensions)
            where = f"/{kind}/{position}/key"
            problems.append(Problem(DUPLICATE_KEY, where, f"key {key!r} is used twice"))
        seen.add(key)


def _parsed(text: str, where: str) -> Expression:
    try:
        return parse(text)
    except ExpressionError as err:
        raise _problem(BAD_EXPR, where, f"{err.code}: {err}") from err


def _expr(dataset: Dataset, text: str, where: str) -> ReportExpr:
    expression = _parsed(text, where)
    names = sorted(n for n in references(expression) if not n.startswith("$"))
    columns = {name: dataset.resolve(name, where=where) for name in names}
    expression, calls = extract(expression, where)
    return ReportExpr(expression, columns, where, calls)


def _dimension(dataset: Dataset, spec: Dimension, index: int) -> CompiledDimension:
    where = f"/dimensions/{index}"
    label = _label(spec.label, spec.key)
    if spec.expr is not None:
        item = _expr(dataset, spec.expr, f"{where}/expr")
        column = ResultColumn(spec.key, label, "dimension", _expression_type(item))
        return CompiledDimension(spec.key, column, None, item, None, ())
    assert spec.field is not None
    source = dataset.resolve(spec.field, where=f"{where}/field")
    if spec.grain is not None and not is_temporal(source.family):
        message = f"grain {spec.grain!r} needs a date or datetime field, {spec.field!r} is not"
        raise _problem(GRAIN_NOT_DATE, f"{where}/grain", message)
    if spec.buckets and source.family != NUMBER:
        raise _problem(BUCKETS_NOT_NUMBER, f"{where}/buckets", "buckets need a number field")
    if spec.buckets and list(spec.buckets) != sorted(set(spec.buckets)):
        raise _problem(BUCKETS_NOT_NUMBER, f"{where}/buckets", "bounds must increase")
    value_type: ColumnType = "date" if spec.grain else _family_type(source.family)
    if spec.buckets:
        value_type = "text"
    column = ResultColumn(spec.key, label, "dimension", value_type)
    return CompiledDimension(spec.key, column, source, None, spec.grain, tuple(spec.buckets))


def _measure(dataset: Dataset, spec: Measure, index: int, dialect: str) -> CompiledMeasure:
    where = f"/measures/{index}"
    label = _label(spec.label, spec.key)
    if spec.expr is not None:
        column = ResultColumn(spec.key, label, "measure", "number", spec.format, spec.decimals)
        return CompiledMeasure(
            spec.key, column, None, None, None, _parsed(spec.expr, f"{where}/expr")
        )
    aggregate = str(spec.aggregate)
    if not supported(aggregate, dialect):
        message = f"{aggregate} is not computed by {dialect}; use PostgreSQL or avg/min/max"
        raise _problem(AGGREGATE_UNSUPPORTED, f"{where}/aggregate", message)
    source = None
    if spec.field is not None:
        source = dataset.resolve(spec.field, where=f"{where}/field")
        if source.family not in SCALAR_FAMILIES or not accepts(aggregate, source.family):
            message = f"{aggregate} does not apply to {spec.field!r} ({source.family})"
            raise _problem(NOT_AGGREGATABLE, f"{where}/aggregate", message)
    value, family = None, source.family if source else None
    if spec.value is not None:
        value = _expr(dataset, spec.value, f"{where}/value")
        family = _TYPE_FAMILIES.get(_expression_type(value), TEXT)
        if not accepts(aggregate, family):
            message = f"{aggregate} does not apply to a {family} value"
            raise _problem(NOT_AGGREGATABLE, f"{where}/aggregate", message)
    condition = _expr(dataset, spec.filter, f"{where}/filter") if spec.filter else None
    kind = result_type(aggregate, family)
    column = ResultColumn(spec.key, label, "measure", kind, spec.format, spec.decimals)
    return CompiledMeasure(spec.key, column, aggregate, source, condition, None, value)


def _check_outer(compiled: CompiledReport, problems: list[Problem]) -> None:
    """Build the statement once with a fixed clock: bad expressions and keys fail here."""
    keys = {d.key for d in compiled.dimensions} | {m.key for m in compiled.measures}
    for index, sort in enumerate(compiled.spec.sort):
        if sort.by not in keys:
            problems.append(Problem(UNKNOWN_KEY, f"/sort/{index}/by", f"no column {sort.by!r}"))
    guard = compiled.spec.small_sample
    for index, key in enumerate(guard.measures if guard else ()):
        if key not in {m.key for m in compiled.measures}:
            where = f"/small_sample/measures/{index}"
            problems.append(Problem(UNKNOWN_KEY, where, f"no measure {key!r}"))
    if compiled.spec.others and not (compiled.dimensions and compiled.spec.limit):
        message = "others needs a dimension and a limit"
        problems.append(Problem(UNKNOWN_KEY, "/others", message))
    if problems:
        return
    from engine.reports.statement import build_statement

    try:
        build_statement(compiled, now=_CHECK_CLOCK)
    except DefinitionError as err:
        problems.extend(err.problems)


def _expression_type(item: ReportExpr) -> ColumnType:
    catalog = {name: _EXPR_TYPES.get(column.family, ExprType.ANY)
               for name, column in item.columns.items()}  # fmt: skip
    catalog |= {call.name: ExprType.DATETIME for call in item.worktime}
    try:
        kind = check(item.expression, catalog)
    except ExpressionError as err:
        raise _problem(BAD_EXPR, item.where, f"{err.code}: {err}") from err
    return {"number": "number", "boolean": "boolean", "date": "date", "datetime": "datetime"}.get(
        kind.kind, "text"
    )  # type: ignore[return-value]


_EXPR_TYPES = {TEXT: ExprType.TEXT, CHOICE: ExprType.TEXT, NUMBER: ExprType.NUMBER,
               DATE: ExprType.DATE, DATETIME: ExprType.DATETIME, TIME: ExprType.TIME,
               BOOLEAN: ExprType.BOOLEAN, ID: ExprType.NUMBER}  # fmt: skip
_TYPE_FAMILIES = {"number": NUMBER, "date": DATE, "datetime": DATETIME, "boolean": BOOLEAN}


def _family_type(family: str) -> ColumnType:
    types: dict[str, ColumnType] = {NUMBER: "number", DATE: "date", DATETIME: "datetime",
                                    BOOLEAN: "boolean", ID: "integer"}  # fmt: skip
    return types.get(family, "text")


def _label(label: Any, key: str) -> str:
    return key if label is None else label_text(label)


def _problem(code: str, path: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(code=code, path=path, message=message)])


__all__ = [
    "BAD_EXPR",
    "BUCKETS_NOT_NUMBER",
    "DUPLICATE_KEY",
    "GRAIN_NOT_DATE",
    "UNKNOWN_KEY",
    "CompiledDimension",
    "CompiledMeasure",
    "CompiledReport",
    "compile_report",
    "ReportExpr",
]

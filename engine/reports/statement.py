"""The one SELECT of a compiled report, built per request (clock, conditions, drill, limit).

Row level: `SELECT d0, r0 (bucket rank), m0 … FROM base JOIN … WHERE …`; outer level:
`SELECT key AS …, AGG(m0) AS … FROM (row level) GROUP BY d0, r0 HAVING … ORDER BY … LIMIT`.
A top-N with others ranks the first dimension's groups in a second scan of the row level
(`d0 IN (SELECT … top N)`), so every measure of the others row, a median included, is
computed over its rows, never summed from group results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.expr import ExpressionError
from engine.expr.sql import compile_filter, compile_sql
from engine.reports.blend_sql import PRIMARY, PopulationInput, blended_statement
from engine.reports.measures import (
    PERCENTILES,
    aggregate_sql,
    interpolated_percentile,
    ranked_inputs,
)
from engine.reports.query import drill_condition
from engine.reports.rows import condition_sql, dimension_rank, dimension_sql, expression_sql

if TYPE_CHECKING:
    from engine.reports.compiler import CompiledReport
    from engine.reports.dataset import Dataset

Sql = ColumnElement[Any]
BAD_HAVING = "report.bad-having"
OTHER = "_other"


def build_statement(
    compiled: CompiledReport,
    *,
    now: datetime,
    conditions: Sequence[Sql] = (),
    join_conditions: Mapping[str, list[Sql]] | None = None,
    drill: Mapping[str, Any] | None = None,
    limit: int | None = None,
    dataset: Dataset | None = None,
    populations: Mapping[str, PopulationInput] | None = None,
) -> sa.Select[Any]:
    """The report's SELECT; `conditions` are ANDed into the row level's WHERE (scope, filters),
    `join_conditions` into the ON clause of the named join (a joined form's scope), `drill`
    keeps the rows whose dimension (by key) has the given value. `limit` overrides the spec's.
    A blended report takes each further population's conditions from `populations`.
    """
    if compiled.blend is not None:
        primary = PopulationInput(conditions, join_conditions or {}, dataset)
        inputs = {**(populations or {}), PRIMARY: primary}
        return blended_statement(compiled, now=now, inputs=inputs, drill=drill, limit=limit)
    dataset = dataset or compiled.dataset
    dialect, zone = compiled.dialect, compiled.zone
    base = dataset.base.table
    where: list[Sql] = [] if dataset.include_deleted else [base.c.deleted_at.is_(None)]
    where += [condition_sql(item, dialect, now, zone) for item in compiled.where]
    where += list(conditions)
    dims = {d.key: dimension_sql(d, dialect, zone, now) for d in compiled.dimensions}
    for key, value in (drill or {}).items():
        where.append(drill_condition(dims[key], value))
    selected: list[Sql] = []
    for index, dimension in enumerate(compiled.dimensions):
        selected.append(dims[dimension.key].label(f"d{index}"))
        rank = dimension_rank(dimension)
        if rank is not None:
            selected.append(rank.label(f"r{index}"))
    for index, measure in enumerate(compiled.measures):
        value = _measure_input(measure, dialect, now, zone)
        if value is not None:
            selected.append(value.label(f"m{index}"))
    source = dataset.from_clause(set(dataset.sources), join_conditions or {})
    if not selected:
        selected.append(base.c.id.label("_id"))
    rows = sa.select(*selected).select_from(source).where(*where)
    limit = limit if limit is not None else compiled.spec.limit
    if not compiled.aggregated:
        return _detail(compiled, dims, rows, base, limit)
    if compiled.spec.others and compiled.dimensions and limit:
        if _regroupable(compiled):
            return _others_from_groups(compiled, rows, limit)
        return _with_others(compiled, rows, limit)
    inner = rows.subquery("rows")
    statement = _grouped(compiled, inner, others=False)
    return statement.limit(limit) if limit else statement


def _measure_input(measure: Any, dialect: str, now: datetime, zone: Any) -> Sql | None:
    if measure.aggregate is None:
        return None
    value: Sql | None = measure.source.sql if measure.source is not None else None
    if measure.value is not None:
        value = expression_sql(measure.value, dialect, now, zone)
    if measure.filter is None:
        return value
    condition = condition_sql(measure.filter, dialect, now, zone)
    return sa.case((condition, value if value is not None else sa.literal(1)), else_=sa.null())


def _aggregates(compiled: CompiledReport, inner: Any) -> dict[str, Sql]:
    found: dict[str, Sql] = {}
    for index, measure in enumerate(compiled.measures):
        if measure.aggregate is None:
            continue
        value = inner.c[f"m{index}"] if f"m{index}" in inner.c else None
        plain = measure.source is None and measure.value is None
        if measure.aggregate == "count" and measure.filter is None and plain:
            value = None
        if measure.aggregate in PERCENTILES and compiled.dialect == "sqlite":
            ranked = _window_percentiles(compiled)[index]
            aggregate = interpolated_percentile(inner, ranked, PERCENTILES[measure.aggregate])
        else:
            aggregate = aggregate_sql(measure.aggregate, value)
        found[measure.key] = _typed(aggregate, measure.column.type)
    for index, measure in enumerate(compiled.measures):
        if measure.expr is None:
            continue
        try:
            calculated = compile_sql(measure.expr, found, dialect=compiled.dialect, now=_epoch())
        except ExpressionError as err:
            where = f"/measures/{index}/expr"
            raise DefinitionError([Problem(BAD_HAVING, where, f"{err.code}: {err}")]) from err
        found[measure.key] = sa.type_coerce(calculated, sa.Float())
    return found


def _window_percentiles(compiled: CompiledReport) -> dict[int, int]:
    """SQLite's median/p90 measures → the measure whose ranked input each uses (measures over
    the same input share one window sort)."""
    if compiled.dialect != "sqlite":
        return {}
    shared: dict[tuple[str | None, ...], int] = {}
    found: dict[int, int] = {}
    for index, measure in enumerate(compiled.measures):
        if measure.aggregate not in PERCENTILES:
            continue
        key = (
            measure.source.path if measure.source else None,
            measure.value.expression.text if measure.value else None,
            measure.filter.expression.text if measure.filter else None,
        )
        found[index] = shared.setdefault(key, index)
    return found


def _typed(aggregate: Sql, kind: str) -> Sql:
    if kind == "integer":
        return sa.type_coerce(aggregate, sa.BigInteger())
    if kind == "number":
        return sa.type_coerce(aggregate, sa.Float())
    return aggregate


def _epoch() -> datetime:
    from engine.reports.compiler import _CHECK_CLOCK

    return _CHECK_CLOCK


def _grouped(
    compiled: CompiledReport, inner: Any, *, others: bool, regroup: bool = False
) -> sa.Select[Any]:
    """GROUP BY the dimensions of `inner`; `regroup`: its rows are already groups (a<i>)."""
    names = [n for i in range(len(compiled.dimensions)) for n in (f"d{i}", f"r{i}") if n in inner.c]
    names += [OTHER] if others else []
    ranked = {} if regroup else _window_percentiles(compiled)
    if ranked:  # SQLite: rank each median/p90 input within its group first
        inner = ranked_inputs(inner, sorted(set(ranked.values())), [inner.c[n] for n in names])
    measures = _regrouped(compiled, inner) if regroup else _aggregates(compiled, inner)
    group: list[Sql] = [inner.c[name] for name in names]
    selected: list[Sql] = []
    for index, dimension in enumerate(compiled.dimensions):
        selected.append(inner.c[f"d{index}"].label(dimension.key))
    selected += [measures[m.key].label(m.key) for m in compiled.measures]
    if others:
        selected.append(inner.c[OTHER].label(OTHER))
    statement = sa.select(*selected).select_from(inner)
    if group:
        statement = statement.group_by(*group)
    having = [_having(compiled, expression, measures, i) for i, expression in
              enumerate(compiled.having)]  # fmt: skip
    if having:
        statement = statement.having(*having)
    order = [inner.c[OTHER].asc()] if others else []
    return statement.order_by(*order, *_order(compiled, inner, measures))


def _having(
    compiled: CompiledReport, expression: Any, measures: Mapping[str, Sql], index: int
) -> Sql:
    try:
        return compile_filter(expression, measures, dialect=compiled.dialect, now=_epoch())
    except ExpressionError as err:
        position = [i for i, f in enumerate(compiled.spec.filters) if f.stage == "having"][index]
        where = f"/filters/{position}/expr"
        raise DefinitionError([Problem(BAD_HAVING, where, f"{err.code}: {err}")]) from err


def _order(compiled: CompiledReport, inner: Any, measures: Mapping[str, Sql]) -> list[Sql]:
    """The spec's sort, then every dimension ascending: the same order on both databases."""
    dims = {d.key: i for i, d in enumerate(compiled.dimensions)}
    clauses: list[Sql] = []
    used: set[str] = set()
    for sort in compiled.spec.sort:
        used.add(sort.by)
        if sort.by in dims:
            value = _dimension_key(compiled, inner, dims[sort.by])
        else:
            value = measures[sort.by]
        clauses.append(_direction(value, sort.direction == "desc"))
    for key, index in dims.items():
        if key not in used:
            clauses.append(_direction(_dimension_key(compiled, inner, index), False))
    return clauses


def _dimension_key(compiled: CompiledReport, inner: Any, index: int) -> Sql:
    if f"r{index}" in inner.c:
        return inner.c[f"r{index}"]  # type: ignore[no-any-return]
    column = inner.c[f"d{index}"]
    if compiled.dialect == "postgresql" and compiled.dimensions[index].column.type == "text":
        return column.collate("C")  # type: ignore[no-any-return]  # byte order, as SQLite
    return column  # type: ignore[no-any-return]


def _direction(value: Sql, descending: bool) -> Sql:
    return value.desc().nulls_first() if descending else value.asc().nulls_last()


def _with_others(compiled: CompiledReport, rows: sa.Select[Any], limit: int) -> sa.Select[Any]:
    ranking = rows.subquery("ranking")
    percentiles = _window_percentiles(compiled)
    if percentiles:
        shared = sorted(set(percentiles.values()))
        ranking = ranked_inputs(ranking, shared, [ranking.c.d0], name="ranking_ranked")
    measures = _aggregates(compiled, ranking)
    first = ranking.c.d0
    number = sa.func.row_number().over(order_by=_ranking(compiled, measures, first))
    ranked = sa.select(first.label("d0"), number.label("rn")).group_by(first).subquery("ranked")
    null_in_top = sa.exists().where(ranked.c.rn <= limit, ranked.c.d0.is_(None))
    data = rows.subquery("data")
    top = sa.select(ranked.c.d0, ranked.c.rn).where(ranked.c.rn <= limit).subquery("top")
    # A hash join on the group value finds the kept rows; the blank group (if ranked in the
    # top N) is found by one uncorrelated EXISTS, evaluated once.
    kept = sa.or_(top.c.rn.is_not(None), sa.and_(data.c.d0.is_(None), null_in_top))
    joined = data.outerjoin(top, data.c.d0 == top.c.d0)
    flagged = sa.select(*data.c, kept.label("_kept")).select_from(joined).subquery("flagged")
    columns: list[Sql] = []
    for column in flagged.c:
        if column.name in ("d0", "r0"):
            columns.append(sa.case((flagged.c._kept, column), else_=sa.null()).label(column.name))
        elif column.name != "_kept":
            columns.append(column)
    columns.append(sa.case((flagged.c._kept, 0), else_=1).label(OTHER))
    tagged = sa.select(*columns).subquery("tagged")
    return _grouped(compiled, tagged, others=True)


# Aggregates whose value over several groups is the same aggregate of the groups' values.
_REGROUP = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}


def _regroupable(compiled: CompiledReport) -> bool:
    """One dimension and only count/sum/min/max (and measures over them): the others row can
    be summed from the groups, in one scan of the rows."""
    return len(compiled.dimensions) == 1 and all(
        m.aggregate in _REGROUP or m.aggregate is None for m in compiled.measures
    )


def _calculated(compiled: CompiledReport, found: dict[str, Sql]) -> dict[str, Sql]:
    for measure in compiled.measures:
        if measure.expr is not None:
            value = compile_sql(measure.expr, found, dialect=compiled.dialect, now=_epoch())
            found[measure.key] = sa.type_coerce(value, sa.Float())
    return found


def _regrouped(compiled: CompiledReport, inner: Any) -> dict[str, Sql]:
    found: dict[str, Sql] = {}
    for index, measure in enumerate(compiled.measures):
        if measure.aggregate is not None:
            value = aggregate_sql(_REGROUP[measure.aggregate], inner.c[f"a{index}"])
            found[measure.key] = _typed(value, measure.column.type)
    return _calculated(compiled, found)


def _others_from_groups(
    compiled: CompiledReport, rows: sa.Select[Any], limit: int
) -> sa.Select[Any]:
    """Top-N and others from the groups: aggregate once, rank the groups, fold the rest."""
    inner = rows.subquery("rows")
    measures = _aggregates(compiled, inner)
    keys = [inner.c.d0] + ([inner.c.r0] if "r0" in inner.c else [])
    values = [measures[m.key].label(f"a{i}") for i, m in enumerate(compiled.measures)
              if m.aggregate is not None]  # fmt: skip
    groups = sa.select(*keys, *values).group_by(*keys).subquery("groups")
    level: dict[str, Sql] = {m.key: groups.c[f"a{i}"] for i, m in enumerate(compiled.measures)
             if m.aggregate is not None}  # fmt: skip
    level = _calculated(compiled, level)
    number = sa.func.row_number().over(order_by=_ranking(compiled, level, groups.c.d0))
    ranked = sa.select(*groups.c, number.label("rn")).subquery("ranked")
    kept = ranked.c.rn <= limit
    columns: list[Sql] = []
    for column in ranked.c:
        if column.name in ("d0", "r0"):
            columns.append(sa.case((kept, column), else_=sa.null()).label(column.name))
        elif column.name != "rn":
            columns.append(column)
    columns.append(sa.case((kept, 0), else_=1).label(OTHER))
    tagged = sa.select(*columns).subquery("tagged")
    return _grouped(compiled, tagged, others=True, regroup=True)


def _ranking(compiled: CompiledReport, measures: Mapping[str, Sql], first: Any) -> list[Sql]:
    """The order of the first dimension's groups for top-N: the first measure sort, else the
    first measure descending; ties by the group value."""
    order_key = next((s for s in compiled.spec.sort if s.by in measures), None)
    if order_key is not None:
        ranked_by = _direction(measures[order_key.by], order_key.direction == "desc")
    else:
        ranked_by = _direction(measures[compiled.measures[0].key], True)
    tiebreak = first.collate("C") if compiled.dialect == "postgresql" and (
        compiled.dimensions[0].column.type == "text") else first  # fmt: skip
    return [ranked_by, tiebreak.asc().nulls_last()]


def _detail(
    compiled: CompiledReport,
    dims: Mapping[str, Sql],
    rows: sa.Select[Any],
    base: Any,
    limit: int | None,
) -> sa.Select[Any]:
    """A report without measures: one row per record, dimensions as columns, then by id."""
    statement = rows.with_only_columns(*(value.label(key) for key, value in dims.items()))
    order = [_direction(dims[s.by], s.direction == "desc") for s in compiled.spec.sort]
    statement = statement.order_by(*order, base.c.id.asc())
    return statement.limit(limit) if limit else statement


__all__ = ["BAD_HAVING", "OTHER", "build_statement"]

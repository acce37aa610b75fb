"""The one statement of a blended report: each population grouped in a subquery, joined on
the dimension values.

Each population (the report's own dataset first) becomes the grouped SELECT a report of its
own would run (same grains, buckets, zone, percentile machinery), without its ORDER BY. The
groups are the UNION of the dimension values of every population that maps all dimensions
(so a group present in one population only still shows); each population is LEFT JOINed on
its dimensions with a blank-safe equality (`IS NOT DISTINCT FROM`, SQLite `IS`). A
population that maps only some dimensions joins on those, so its values repeat across the
others. Missing counts are 0; calculated measures, having, sort and limit apply outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.expr import ExpressionError
from engine.expr.sql import compile_sql
from engine.reports.exists import with_exists_scope

if TYPE_CHECKING:
    from engine.reports.compiler import CompiledReport
    from engine.reports.dataset import Dataset

Sql = ColumnElement[Any]
BAD_HAVING = "report.bad-having"
PRIMARY = ""  # the inputs key of the report's own dataset (population keys are never blank)


@dataclass(frozen=True, slots=True)
class PopulationInput:
    """What a request adds to one population: WHERE conditions (scope, request filters), ON
    conditions per join, and the dataset copy those filters resolved in."""

    conditions: Sequence[Sql] = ()
    join_conditions: Mapping[str, list[Sql]] = field(default_factory=dict)
    dataset: Dataset | None = None


def blended_statement(
    compiled: CompiledReport,
    *,
    now: datetime,
    inputs: Mapping[str, PopulationInput],
    drill: Mapping[str, Any] | None,
    limit: int | None,
) -> sa.Select[Any]:
    """The SELECT of `compiled` (which has a `blend`); `inputs` by population key."""
    from engine.reports.statement import _direction, _having, _typed, build_statement

    assert compiled.blend is not None
    parts = [(PRIMARY, compiled.blend.primary, True)]
    parts += [(p.key, p.report, p.aligned) for p in compiled.blend.populations]
    groups: list[tuple[CompiledReport, bool, Any]] = []
    for index, (key, report, aligned) in enumerate(parts):
        given = inputs.get(key, PopulationInput())
        own = {d.key for d in report.dimensions}
        statement = build_statement(
            report, now=now, conditions=given.conditions, join_conditions=given.join_conditions,
            drill={k: v for k, v in (drill or {}).items() if k in own}, dataset=given.dataset,
        )  # fmt: skip
        statement = with_exists_scope(statement, given.dataset or report.dataset,
                                      given.join_conditions)  # fmt: skip
        groups.append((report, aligned, statement.order_by(None).subquery(f"p{index}")))
    keys, joined = _joined(compiled, groups)
    found: dict[str, Sql] = {}
    for report, _, group in groups:
        for measure in report.measures:
            value = group.c[measure.key]
            if measure.aggregate in ("count", "count_distinct"):
                value = sa.func.coalesce(value, 0)
            found[measure.key] = _typed(value, measure.column.type)
    _calculated(compiled, found)
    selected = [keys.c[d.key].label(d.key) for d in compiled.dimensions]
    selected += [found[m.key].label(m.key) for m in compiled.measures]
    statement = sa.select(*selected).select_from(joined)
    having = [_having(compiled, expression, found, i) for i, expression in
              enumerate(compiled.having)]  # fmt: skip
    if having:  # the outer level does not aggregate: its measures are plain columns
        statement = statement.where(*having)
    order: list[Sql] = []
    used: set[str] = set()
    for sort in compiled.spec.sort:
        used.add(sort.by)
        value = found[sort.by] if sort.by in found else _dimension_order(compiled, keys, sort.by)
        order.append(_direction(value, sort.direction == "desc"))
    order += [_direction(_dimension_order(compiled, keys, d.key), False)
              for d in compiled.dimensions if d.key not in used]  # fmt: skip
    statement = statement.order_by(*order)
    limit = limit if limit is not None else compiled.spec.limit
    return statement.limit(limit) if limit else statement


def _joined(compiled: CompiledReport, groups: list[tuple[CompiledReport, bool, Any]]) -> Any:
    """(the subquery holding the groups' dimension values, the FROM clause)."""
    dims = [d.key for d in compiled.dimensions]
    full = [group for _, aligned, group in groups if aligned]
    if dims and len(full) > 1:
        union = sa.union(*(sa.select(*(group.c[k] for k in dims)) for group in full))
        keys, rest = union.subquery("groups"), groups
    else:
        keys, rest = groups[0][2], groups[1:]
    joined: Any = keys
    for report, _, group in rest:
        on = [keys.c[d.key].is_not_distinct_from(group.c[d.key]) for d in report.dimensions]
        joined = joined.outerjoin(group, sa.and_(sa.true(), *on))
    return keys, joined


def _calculated(compiled: CompiledReport, found: dict[str, Sql]) -> None:
    for index, measure in enumerate(compiled.measures):
        if measure.expr is None:
            continue
        try:
            value = compile_sql(measure.expr, found, dialect=compiled.dialect, now=_epoch())
        except ExpressionError as err:
            where = f"/measures/{index}/expr"
            raise DefinitionError([Problem(BAD_HAVING, where, f"{err.code}: {err}")]) from err
        found[measure.key] = sa.type_coerce(value, sa.Float())


def _dimension_order(compiled: CompiledReport, keys: Any, key: str) -> Sql:
    """A dimension's sort key: bucket labels by position, text in byte order (as SQLite)."""
    dimension = next(d for d in compiled.dimensions if d.key == key)
    column = keys.c[key]
    if dimension.buckets:
        labels = bucket_labels(dimension.buckets)
        return sa.case(*((column == label, i) for i, label in enumerate(labels)), else_=None)
    if compiled.dialect == "postgresql" and dimension.column.type == "text":
        return column.collate("C")  # type: ignore[no-any-return]
    return column  # type: ignore[no-any-return]


def bucket_labels(bounds: tuple[float, ...]) -> list[str]:
    """The labels engine/reports/dimensions.py `bucket_sql` gives, in bucket order."""

    def text(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else str(value)

    labels = [f"< {text(bounds[0])}"]
    labels += [f"{text(low)} – {text(high)}" for low, high in zip(bounds, bounds[1:], strict=False)]
    return labels + [f"≥ {text(bounds[-1])}"]


def _epoch() -> datetime:
    from engine.reports.compiler import _CHECK_CLOCK

    return _CHECK_CLOCK


__all__ = ["PRIMARY", "PopulationInput", "blended_statement", "bucket_labels"]

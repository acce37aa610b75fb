"""Request-time conditions of a blended report's further populations.

A request filter names a field of the report's own dataset; each population applies it to
the field its `fields` map gives. A field mapped to null does not exist in that population,
so the filter skips it (a staff headcount ignores the tickets' resolution date). A field
the population does not map at all is an error (`report.blend-unmapped`, path
`/filters/<i>/field`): dropping the filter silently would divide filtered by unfiltered
numbers. The actor's read scope of each population's forms joins its WHERE and ON clauses,
as for the report's own dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError
from engine.reports.blend import BLEND_UNMAPPED, CompiledPopulation
from engine.reports.blend_sql import PopulationInput
from engine.reports.compiler import CompiledReport
from engine.reports.dataset import Dataset
from engine.reports.query import FilterClause, bad, clause_condition

Sql = ColumnElement[Any]
Scope = Callable[[str, Any], list[Sql]]  # (form, table) -> the actor's read scope on it


@dataclass(frozen=True, slots=True)
class PopulationRequest:
    """One population's request filters, resolved in its own copy of its dataset."""

    key: str
    dataset: Dataset
    conditions: tuple[Sql, ...]
    reads: frozenset[tuple[str, str]]

    @property
    def forms(self) -> set[str]:
        return {source.form for source in self.dataset.sources.values()}

    def input(self, scope: Scope | None) -> PopulationInput:
        """The statement's input, with the read scope (None: an internal caller, no scope)."""
        if scope is None:
            return PopulationInput(self.conditions, {}, self.dataset)
        base = self.dataset.base
        joins = {
            name: scope(source.form, source.table)
            for name, source in self.dataset.sources.items()
            if name != base.name and source.prefix == ""
        }
        conditions = (*self.conditions, *scope(base.form, base.table))
        return PopulationInput(conditions, joins, self.dataset)


def population_requests(
    compiled: CompiledReport, filters: Sequence[FilterClause]
) -> list[PopulationRequest]:
    """Each population's conditions for the request `filters` (fields of the report's dataset).

    Raises:
        ReportQueryError: `report.blend-unmapped` when a population has no entry for a
            filter's field; `report.bad-filter` / `report.unknown-field` as for the report.
    """
    if compiled.blend is None:
        return []
    return [_request(compiled, p, filters) for p in compiled.blend.populations]


def _request(
    compiled: CompiledReport, population: CompiledPopulation, filters: Sequence[FilterClause]
) -> PopulationRequest:
    own = population.report.dataset
    dataset = replace(own, sources=dict(own.sources))
    conditions: list[Sql] = []
    reads: set[tuple[str, str]] = set()
    for index, clause in enumerate(filters):
        where = f"/filters/{index}"
        if clause.field not in population.fields:
            message = (f"population {population.key!r} has no entry for {clause.field!r} in its "
                       "fields (map it, or to null to skip the filter there)")  # fmt: skip
            raise bad(f"{where}/field", message, code=BLEND_UNMAPPED)
        target = population.fields[clause.field]
        if target is None:
            continue
        try:
            column = dataset.resolve(target, where=f"{where}/field")
        except DefinitionError as err:
            raise bad(f"{where}/field", err.problems[0].message, err.problems[0].code) from err
        reads.update(column.reads)
        conditions.append(
            clause_condition(column.sql, column.family, clause, zone=compiled.zone, where=where)
        )
    return PopulationRequest(population.key, dataset, tuple(conditions), frozenset(reads))


__all__ = ["PopulationRequest", "population_requests"]

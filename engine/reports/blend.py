"""Blended reports: further populations (another form, other filters, their own aggregate
measures) grouped by the report's dimensions, so one measure can divide aggregates of two
populations (parts cost per repair, revenue of visits plus contracts).

`compile_blend` checks each population as a report of its own whose dimensions are the
report's field dimensions mapped through the population's `fields`, with the same grains,
buckets and time zone; engine/reports/blend_sql.py joins the groups in one statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from engine.errors import DefinitionError, Problem
from engine.reports.spec import Dimension, Population, ReportSpec

if TYPE_CHECKING:
    from engine.reports.compiler import CompiledReport

BLEND_UNSUPPORTED = "report.blend-unsupported"
BLEND_UNMAPPED = "report.blend-unmapped"
BLEND_MISMATCH = "report.blend-mismatch"
DUPLICATE_KEY = "report.duplicate-key"


@dataclass(frozen=True, slots=True)
class CompiledPopulation:
    """One further population: `report` groups it by the dimensions it maps (same keys).

    `aligned`: it maps every dimension, so its groups also add rows; otherwise its values
    repeat across the dimensions it has no field for.
    """

    key: str
    report: CompiledReport
    fields: Mapping[str, str | None]
    aligned: bool


@dataclass(frozen=True, slots=True)
class CompiledBlend:
    """`primary`: the report reduced to its own dataset's aggregate measures."""

    primary: CompiledReport
    populations: tuple[CompiledPopulation, ...]

    @property
    def forms(self) -> frozenset[str]:
        return frozenset(form for p in self.populations for form in p.report.forms)


Compile = Callable[..., "CompiledReport"]


def compile_blend(
    compiled: CompiledReport, *, forms: Mapping[str, Any], compile_report: Compile
) -> CompiledReport:
    """`compiled` with its populations: their measures join its measures and columns.

    Raises:
        DefinitionError: every problem, with paths under `/blend/<i>` (or `/others`,
            `/dimensions/<i>/expr`, `/measures` for what a blended report cannot do).
    """
    problems = _report_problems(compiled)
    keys = {d.key for d in compiled.dimensions} | {m.key for m in compiled.measures}
    seen: set[str] = set()
    populations: list[CompiledPopulation] = []
    for index, population in enumerate(compiled.spec.blend):
        where = f"/blend/{index}"
        if population.key in seen:
            message = f"population key {population.key!r} is used twice"
            problems.append(Problem(DUPLICATE_KEY, f"{where}/key", message))
        seen.add(population.key)
        try:
            made = _population(compiled, population, where, forms, compile_report)
        except DefinitionError as err:
            problems.extend(err.problems)
            continue
        for position, measure in enumerate(made.report.measures):
            if measure.key in keys:
                message = f"key {measure.key!r} is used twice"
                problems.append(Problem(DUPLICATE_KEY, f"{where}/measures/{position}/key", message))
            keys.add(measure.key)
        populations.append(made)
    if problems:
        raise DefinitionError(problems)
    return _blended(compiled, tuple(populations))


def _report_problems(compiled: CompiledReport) -> list[Problem]:
    spec = compiled.spec
    found = []
    if spec.others:
        found.append(Problem(BLEND_UNSUPPORTED, "/others", "others is not available with blend"))
    for index, dimension in enumerate(spec.dimensions):
        if dimension.expr is not None:
            message = "a blended report groups by fields, which each population maps"
            found.append(Problem(BLEND_UNSUPPORTED, f"/dimensions/{index}/expr", message))
    if not any(m.aggregate is not None for m in compiled.measures):
        message = "a blended report needs an aggregate measure of its own dataset"
        found.append(Problem(BLEND_UNSUPPORTED, "/measures", message))
    return found


def _population(
    compiled: CompiledReport,
    population: Population,
    where: str,
    forms: Mapping[str, Any],
    compile_report: Compile,
) -> CompiledPopulation:
    problems = _shape_problems(compiled, population, where)
    aligned = _aligned_dimensions(compiled.spec, population, where, problems)
    if problems:
        raise DefinitionError(problems)
    spec = ReportSpec(
        key=compiled.spec.key,
        label=compiled.spec.label,
        dataset=population.dataset,
        dimensions=tuple(dimension for _, dimension in aligned),
        measures=population.measures,
        filters=population.filters,
        timezone=compiled.spec.timezone,
    )
    paths = [path for path, _ in aligned]
    try:
        report = compile_report(
            spec, app=compiled.app, forms=forms, dialect=compiled.dialect,
            timezone=compiled.zone.key, calendars=compiled.calendars,
        )  # fmt: skip
    except DefinitionError as err:
        raise DefinitionError([_moved(p, where, paths) for p in err.problems]) from err
    theirs = {d.key: d for d in compiled.dimensions}
    for path, mine in zip(paths, report.dimensions, strict=True):
        other = theirs[mine.key].column.type
        if mine.column.type != other:
            message = f"{mine.column.type} here, {other} in the report's dimension {mine.key!r}"
            problems.append(Problem(BLEND_MISMATCH, f"{where}/fields/{path}", message))
    problems += _unused_targets(report, population, where, set(paths))
    if problems:
        raise DefinitionError(problems)
    return CompiledPopulation(
        population.key, report, dict(population.fields), len(aligned) == len(theirs)
    )


def _shape_problems(compiled: CompiledReport, population: Population, where: str) -> list[Problem]:
    found = []
    for index, measure in enumerate(population.measures):
        if measure.expr is not None:
            message = "a population's measures aggregate; put calculated ones in the report's"
            found.append(Problem(BLEND_UNSUPPORTED, f"{where}/measures/{index}/expr", message))
    for index, item in enumerate(population.filters):
        if item.stage == "having":
            message = "a population filters rows; put having filters in the report's"
            found.append(Problem(BLEND_UNSUPPORTED, f"{where}/filters/{index}/stage", message))
    probe = replace(compiled.dataset, sources=dict(compiled.dataset.sources))
    for path in population.fields:
        try:
            probe.resolve(path, where=f"{where}/fields/{path}")
        except DefinitionError as err:
            found.extend(err.problems)
    return found


def _aligned_dimensions(
    spec: ReportSpec, population: Population, where: str, problems: list[Problem]
) -> list[tuple[str, Dimension]]:
    """(report field path, the population's dimension) per report dimension it maps."""
    aligned = []
    for dimension in spec.dimensions:
        if dimension.field is None:
            continue
        if dimension.field not in population.fields:
            message = (
                f"no entry for {dimension.field!r}, the field of dimension {dimension.key!r}: "
                f"map it to a field of {population.key!r} or to null"
            )
            problems.append(Problem(BLEND_UNMAPPED, f"{where}/fields", message))
            continue
        target = population.fields[dimension.field]
        if target is not None:
            aligned.append((dimension.field, dimension.model_copy(update={"field": target})))
    return aligned


def _unused_targets(
    report: CompiledReport, population: Population, where: str, used: set[str]
) -> list[Problem]:
    """Targets only request filters use must resolve too (the dimensions' ones did)."""
    probe = replace(report.dataset, sources=dict(report.dataset.sources))
    found: list[Problem] = []
    for path, target in population.fields.items():
        if target is None or path in used:
            continue
        try:
            probe.resolve(target, where=f"{where}/fields/{path}")
        except DefinitionError as err:
            found.extend(err.problems)
    return found


def _moved(problem: Problem, where: str, paths: list[str]) -> Problem:
    """A problem of the population's own report, placed under `/blend/<i>`."""
    parts = problem.path.split("/")
    if len(parts) > 2 and parts[1] == "dimensions" and parts[2].isdigit():
        return replace(problem, path=f"{where}/fields/{paths[int(parts[2])]}")
    return replace(problem, path=where + problem.path)


def _blended(
    compiled: CompiledReport, populations: tuple[CompiledPopulation, ...]
) -> CompiledReport:
    spec = compiled.spec
    own = tuple(m for m in compiled.measures if m.aggregate is not None)
    stripped = spec.model_copy(
        update={
            "blend": (),
            "sort": (),
            "limit": None,
            "others": False,
            "compare": None,
            "small_sample": None,
            "snapshot": None,
        }  # fmt: skip
    )
    primary = replace(
        compiled, spec=stripped, measures=own, having=(), statements={},
        columns=tuple(d.column for d in compiled.dimensions) + tuple(m.column for m in own),
    )  # fmt: skip
    added = tuple(m for p in populations for m in p.report.measures)
    return replace(
        compiled,
        measures=compiled.measures + added,
        columns=compiled.columns + tuple(m.column for m in added),
        blend=CompiledBlend(primary, populations),
        clock_free=compiled.clock_free and all(p.report.clock_free for p in populations),
        statements={},
    )


__all__ = [
    "BLEND_MISMATCH",
    "BLEND_UNMAPPED",
    "BLEND_UNSUPPORTED",
    "CompiledBlend",
    "CompiledPopulation",
    "compile_blend",
]

"""Pure parts of `pick_assignee`: hard filters with reasons, and the lexicographic ranking.

A `Candidate` is one directory row with its user and load; `screen` says why a candidate is
out (every failing filter, in definition order), `rank` orders those left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.expr import Expression, evaluate
from engine.flows.routing import as_keys, is_blank, key
from engine.flows.spec_assign import LOAD, SKILL_LEVEL, CandidateFilter, RankKey


@dataclass(frozen=True, slots=True)
class Candidate:
    record_id: int
    user_id: int
    values: Mapping[str, Any]
    load: int = 0


@dataclass(frozen=True, slots=True)
class Exclusion:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ActiveFilter:
    """A filter that applies to this record, with its `value` already evaluated over it."""

    spec: CandidateFilter
    wanted: Any = None
    expr: Expression | None = None  # the `expr` test, evaluated per candidate


@dataclass
class Screening:
    passed: list[Candidate] = field(default_factory=list)
    excluded: list[tuple[Candidate, list[Exclusion]]] = field(default_factory=list)


Evaluate = Callable[[Expression, Mapping[str, Any]], Any]


def screen(
    candidates: Sequence[Candidate],
    filters: Sequence[ActiveFilter],
    *,
    record: Mapping[str, Any],
    now: datetime,
) -> Screening:
    out = Screening()
    for candidate in candidates:
        failed = [e for f in filters if (e := _test(candidate, f, record, now)) is not None]
        if failed:
            out.excluded.append((candidate, failed))
        else:
            out.passed.append(candidate)
    return out


def _test(
    candidate: Candidate, active: ActiveFilter, record: Mapping[str, Any], now: datetime
) -> Exclusion | None:
    spec = active.spec
    name = spec.field or ""
    have = candidate.load if name == LOAD else candidate.values.get(name)
    wanted = active.wanted
    if spec.test in ("includes", "includes_or_empty"):
        if spec.test == "includes_or_empty" and is_blank(have):
            return None
        missing = sorted(as_keys(wanted) - as_keys(have))
        return _out(spec, f"{name} lacks {', '.join(missing)}") if missing else None
    if spec.test == "equals":
        if is_blank(wanted) or key(have) == key(wanted):
            return None
        return _out(spec, f"{name} is {_show(have)}, not {_show(wanted)}")
    if spec.test == "below":
        limit = candidate.values.get(spec.limit_field) if spec.limit_field else None
        limit = spec.default_limit if limit is None else limit
        current = have or 0
        if limit is None or current < limit:
            return None
        return _out(spec, f"{name} {_show(current)} >= {_show(limit)}")
    if spec.test == "skills":
        for skill, level in requirements(spec, wanted):
            held = held_level(spec, have, skill)
            if held < level:
                return _out(spec, f"{skill} {held} < {level}")
        return None
    assert active.expr is not None
    values = {**candidate.values, "$record": dict(record), "$load": candidate.load}
    if evaluate(active.expr, values, now=now) is True:
        return None
    return _out(spec, "condition not met")


def requirements(spec: CandidateFilter, wanted: Any) -> list[tuple[str, int]]:
    """(skill, minimum level) pairs from a list of skill keys or of requirement rows."""
    items = wanted if isinstance(wanted, list | tuple) else ([] if is_blank(wanted) else [wanted])
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, Mapping):
            level = item.get(spec.level_key)
            skill = item.get(spec.skill_key)
            if not is_blank(skill):
                out.append((key(skill), spec.min_level if level is None else int(level)))
        elif not is_blank(item):
            out.append((key(item), spec.min_level))
    return out


def held_level(spec: CandidateFilter, rows: Any, skill: str) -> int:
    """The level a candidate's skills subform rows give `skill` (0 when absent)."""
    best = 0
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and key(row.get(spec.skill_field)) == skill:
            level = row.get(spec.level_field)
            best = max(best, int(level) if isinstance(level, int | Decimal) else 0)
    return best


def rank(
    candidates: Sequence[Candidate],
    keys: Sequence[RankKey],
    *,
    skill: tuple[CandidateFilter, str] | None,
) -> list[Candidate]:
    """Candidates ordered by `keys` (then directory row id): blanks first ascending, last
    descending. `$skill_level` is the level held in `skill` (the first required skill)."""
    ordered = sorted(candidates, key=lambda c: c.record_id)
    for rank_key in reversed(keys):  # stable sorts, least significant key first

        def value(c: Candidate, by: str = rank_key.by) -> Any:
            if by == LOAD:
                return c.load
            if by == SKILL_LEVEL:
                return (
                    0
                    if skill is None
                    else held_level(skill[0], c.values.get(skill[0].field or ""), skill[1])
                )
            return c.values.get(by)

        ordered.sort(
            key=lambda c: (value(c) is not None, value(c) if value(c) is not None else 0),
            reverse=rank_key.order == "desc",
        )
    return ordered


def _out(spec: CandidateFilter, detail: str) -> Exclusion:
    return Exclusion(reason=spec.reason, detail=detail)


def _show(value: Any) -> str:
    if isinstance(value, Decimal) and value == int(value):
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


__all__ = [
    "ActiveFilter",
    "Candidate",
    "Exclusion",
    "Screening",
    "held_level",
    "rank",
    "requirements",
    "screen",
]

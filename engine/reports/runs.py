"""What one report run is, and the parts of its cache key that are not the query itself.

`Run` carries the request's filters, drill and limit. `clock_part` is the piece of the clock a
query's result depends on (none, the day or the minute), `scope_key` the actor's scope (who
they are and the access their roles compile to, so a role change is a new key).
`run_in_threads` runs dashboard widgets concurrently, one connection each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.forms.record_access import Who
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess
from engine.reports.cache import CacheKey, actor_scope
from engine.reports.query import FilterClause
from engine.reports.spec import ReportSpec


@dataclass(frozen=True, slots=True)
class Run:
    """What to run: extra filters, a drill ({dimension key: value}), a row limit."""

    filters: tuple[FilterClause, ...] = ()
    drill: Mapping[str, Any] | None = None
    limit: int | None = None

    def parameters(self) -> list[Any]:
        filters = [[c.field, c.op, c.value] for c in self.filters]
        return [filters, dict(self.drill or {}), self.limit]


def clock_part(spec: ReportSpec, now: datetime) -> str:
    """The part of `now` a query's result depends on: none, the day, or the minute.

    Provisional flags depend on the day (a period stops being provisional at midnight).
    """
    text = spec.model_dump_json().lower()
    if "now(" in text or "$now" in text:
        return now.strftime("%Y-%m-%dT%H:%M")
    if "today(" in text or "$today" in text or spec.provisional_days is not None:
        return now.strftime("%Y-%m-%d")
    return ""


def scope_key(actor: Who, accesses: Mapping[str, FormAccess]) -> str:
    who = actor_scope(actor) if isinstance(actor, Actor) else f"user:{actor}"
    compiled = sorted((form, repr(access)) for form, access in accesses.items())
    return CacheKey.build(app="", query=who, parameters=compiled, scope="", versions={}).query


def at_level(spec: ReportSpec, level: tuple[str, ...]) -> ReportSpec:
    """`spec` grouped by the dimensions in `level` only (every measure computed again)."""
    dimensions = tuple(d for d in spec.dimensions if d.key in level)
    kept = {d.key for d in dimensions} | {m.key for m in spec.measures}
    return spec.model_copy(
        update={
            "dimensions": dimensions,
            "sort": tuple(s for s in spec.sort if s.by in kept),
            "limit": None,
            "others": False,
            "compare": None,
        }
    )


def run_in_threads(tasks: Sequence[Callable[[], Any]], *, workers: int = 8) -> list[Any]:
    """Run `tasks` concurrently (each opens its own connection); results in task order."""
    from concurrent.futures import ThreadPoolExecutor

    if len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]


__all__ = ["Run", "at_level", "clock_part", "run_in_threads", "scope_key"]

"""`check_bundle`: validate a bundle without a database, for `tangram check` and CI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.bundles._archive import BundleSource
from engine.bundles.kinds import DEFAULT_KINDS, KindRegistry
from engine.bundles.limits import DEFAULT_LIMITS, BundleLimits
from engine.bundles.loader import load_bundle
from engine.bundles.manifest import BundleManifest
from engine.errors import Problem


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a valid bundle holds: its manifest and the number of definitions per kind."""

    manifest: BundleManifest
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def check_bundle(
    source: BundleSource,
    *,
    kinds: KindRegistry = DEFAULT_KINDS,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> CheckReport:
    """Load and validate a bundle; touches no database.

    Raises:
        DefinitionError: with every problem found.
    """
    bundle = load_bundle(source, kinds=kinds, limits=limits)
    return CheckReport(manifest=bundle.manifest, counts=bundle.counts())


def format_problem(problem: Problem) -> str:
    """`source#path  code  message (hint)` on one line."""
    text = f"{problem.where()}  {problem.code}  {problem.message}"
    return f"{text} ({problem.hint})" if problem.hint else text


def format_problems(problems: Iterable[Problem]) -> str:
    """One line per problem, in the order found, for a terminal."""
    return "\n".join(format_problem(p).replace("\n", " ") for p in problems)


__all__ = ["CheckReport", "check_bundle", "format_problem", "format_problems"]

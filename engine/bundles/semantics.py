"""Checks across a bundle's definitions once each has the right shape.

Forms are compiled by the form engine (`compile_form`), which knows every field rule. Other
kinds get a reference check: a `form`, `report` or `dashboard` key anywhere in a definition
must name a definition of that kind in the bundle (or, with a dot, one in another app).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from engine.bundles._pointer import escape_segment
from engine.errors import DefinitionError, Problem
from engine.spec_base import SpecModel

Definitions = Mapping[str, Mapping[str, SpecModel]]
Sources = Mapping[tuple[str, str], str]
Checker = Callable[[str, Definitions, Sources], list[Problem]]

REFERENCE_KEYS: Mapping[str, str] = {
    "form": "forms",
    "report": "reports",
    "dashboard": "dashboards",
}


def _check_forms(kind: str, definitions: Definitions, sources: Sources) -> list[Problem]:
    """Compile every form against all the bundle's forms; locate each problem in its file."""
    from engine.forms.compiler import compile_form  # the forms engine is optional here

    forms = definitions[kind]
    problems: list[Problem] = []
    for key, spec in sorted(forms.items()):
        try:
            compile_form(spec, forms=forms)
        except DefinitionError as err:
            problems.extend(p.located(source=sources[(kind, key)]) for p in err.problems)
    return problems


def _checkers() -> dict[type[SpecModel], Checker]:
    """Per-class semantic checkers, for the spec classes already imported by the registry."""
    checkers: dict[type[SpecModel], Checker] = {}
    form_spec = getattr(sys.modules.get("engine.forms.spec"), "FormSpec", None)
    if form_spec is not None:
        checkers[form_spec] = _check_forms
    return checkers


def _references(value: Any, pointer: str) -> Iterator[tuple[str, str, str]]:
    """(pointer, target kind, key) for every reference-like key in a dumped definition."""
    if isinstance(value, dict):
        for name, item in value.items():
            child = f"{pointer}/{escape_segment(name)}"
            if name in REFERENCE_KEYS and isinstance(item, str):
                yield child, REFERENCE_KEYS[name], item
            else:
                yield from _references(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{pointer}/{index}")


def _check_references(
    kind: str, definitions: Definitions, sources: Sources, present: Mapping[str, set[str]]
) -> list[Problem]:
    problems = []
    for key, spec in sorted(definitions[kind].items()):
        dumped = spec.model_dump(mode="json", by_alias=True)
        for pointer, target, name in _references(dumped, ""):
            if target not in present or "." in name or name in present[target]:
                continue
            guess = difflib.get_close_matches(name, sorted(present[target]), n=1)
            problems.append(
                Problem(
                    "bundle.unknown-reference",
                    pointer,
                    f"no {target[:-1]} {name!r} in this bundle",
                    hint=f"did you mean {guess[0]!r}?" if guess else None,
                    source=sources[(kind, key)],
                )
            )
    return problems


def check_semantics(
    definitions: Definitions,
    sources: Sources,
    models: Mapping[str, type[SpecModel]],
    present: Mapping[str, set[str]],
) -> list[Problem]:
    """All cross-definition problems of a bundle whose definitions passed their shape checks.

    Args:
        definitions: the valid definitions by kind and key.
        sources: (kind, key) → file name, used to locate problems.
        models: kind → spec class, choosing each kind's checker.
        present: kind → every key with a file, valid or not (so one bad file does not also
            make every reference to it a problem).
    """
    checkers = _checkers()
    problems: list[Problem] = []
    for kind in sorted(definitions):
        checker = checkers.get(models[kind])
        if checker is not None:
            problems.extend(checker(kind, definitions, sources))
        else:
            problems.extend(_check_references(kind, definitions, sources, present))
    return problems


__all__ = ["REFERENCE_KEYS", "check_semantics"]

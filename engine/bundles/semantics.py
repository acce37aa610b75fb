"""Checks across a bundle's definitions once each has the right shape.

Forms are compiled by the form engine (`compile_form`), which knows every field rule. Other
kinds get a reference check: a model field named `form`, `report`, `dashboard` or `flow`
anywhere in a definition must name a definition of that kind in the bundle (or, with a dot,
one in another app).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from engine.bundles._pointer import escape_segment
from engine.bundles.documents import parse_document, validate_document
from engine.bundles.limits import BundleLimits
from engine.errors import DefinitionError, Problem
from engine.spec_base import SpecModel

Definitions = Mapping[str, Mapping[str, SpecModel]]
Sources = Mapping[tuple[str, str], str]

REFERENCE_KEYS: Mapping[str, str] = {
    "form": "forms",
    "report": "reports",
    "dashboard": "dashboards",
    "flow": "flows",
    "calendar": "calendars",
}
OPTION_SETS_FILE = "data/option_sets.yaml"


@dataclass(frozen=True, slots=True)
class BundleView:
    """What semantic checks see: the valid definitions, where they came from, opaque files."""

    definitions: Definitions
    sources: Sources
    files: Mapping[str, bytes]
    present: Mapping[str, set[str]]
    limits: BundleLimits


Checker = Callable[[str, BundleView], list[Problem]]


def _shared_option_sets(view: BundleView) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The option sets of `data/option_sets.yaml`, validated (None when the file is absent)."""
    from engine.forms.spec import OptionSetsFile

    data = view.files.get(OPTION_SETS_FILE)
    if data is None:
        return None, []
    value, problems = parse_document(OPTION_SETS_FILE, data, view.limits)
    if problems:
        return None, problems
    parsed, problems = validate_document(OptionSetsFile, OPTION_SETS_FILE, value)
    if parsed is None:
        return None, problems
    return {s.key: s for s in parsed.option_sets}, []


def _check_forms(kind: str, view: BundleView) -> list[Problem]:
    """Compile every form against all the bundle's forms; locate each problem in its file."""
    from engine.forms.compiler import compile_form

    option_sets, problems = _shared_option_sets(view)
    forms = view.definitions[kind]
    for key, spec in sorted(forms.items()):
        try:
            compile_form(spec, forms=forms, option_sets=option_sets)  # type: ignore[arg-type]
        except DefinitionError as err:
            source = view.sources[(kind, key)]
            problems.extend(p.located(source=source) for p in err.problems)
    return problems


def _checkers() -> dict[type[SpecModel], Checker]:
    """Per-class semantic checkers, for the spec classes already imported by the registry."""
    checkers: dict[type[SpecModel], Checker] = {}
    form_spec = getattr(sys.modules.get("engine.forms.spec"), "FormSpec", None)
    if form_spec is not None:
        checkers[form_spec] = _check_forms
    views = sys.modules.get("engine.forms.views")
    if views is not None:
        checkers[views.ViewSpec] = views.check_views
    if "engine.flows.spec" in sys.modules:
        from engine.flows.bundle_checks import check_flows
        from engine.flows.spec import FlowSpec

        checkers[FlowSpec] = _with_references(check_flows)
    if "engine.reports.spec" in sys.modules:  # dashboards: their deliveries' widgets and roles
        from engine.reports import delivery_checks

        checkers[delivery_checks.SPEC_MODEL] = _with_references(delivery_checks.check_kind)
    for name in ENGINE_CHECKED_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            checkers[module.SPEC_MODEL] = _with_references(module.check_kind)
    return checkers


# Modules exposing SPEC_MODEL and check_kind(kind, view): their checks run with the reference check.
ENGINE_CHECKED_MODULES = ("engine.flows.calendar_spec", "engine.flows.sla_spec")


def _with_references(check: Checker) -> Checker:
    return lambda kind, view: _check_references(kind, view) + check(kind, view)


def _references(value: Any, pointer: str) -> Iterator[tuple[str, str, str]]:
    """(pointer, target kind, key) for every reference field of the models inside `value`.

    Only fields declared on models count: free-form JSON (a webhook payload, chart options)
    may use a `form` key for anything.
    """
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            child = f"{pointer}/{escape_segment(info.alias or name)}"
            if name in REFERENCE_KEYS and isinstance(item, str):
                yield child, REFERENCE_KEYS[name], item
            else:
                yield from _references(item, child)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, f"{pointer}/{escape_segment(str(key))}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _references(item, f"{pointer}/{index}")


def _check_references(kind: str, view: BundleView) -> list[Problem]:
    problems = []
    present = view.present
    for key, spec in sorted(view.definitions[kind].items()):
        for pointer, target, name in _references(spec, ""):
            if target not in present or "." in name or name in present[target]:
                continue
            guess = difflib.get_close_matches(name, sorted(present[target]), n=1)
            problems.append(
                Problem(
                    "bundle.unknown-reference",
                    pointer,
                    f"no {target[:-1]} {name!r} in this bundle",
                    hint=f"did you mean {guess[0]!r}?" if guess else None,
                    source=view.sources[(kind, key)],
                )
            )
    return problems


def check_semantics(view: BundleView, models: Mapping[str, type[SpecModel]]) -> list[Problem]:
    """All cross-definition problems of a bundle whose definitions passed their shape checks.

    `models` (kind → spec class) chooses each kind's checker: forms are compiled, other kinds
    get the reference check. `view.present` holds every key with a file, valid or not, so
    one bad file does not also make every reference to it a problem.
    """
    checkers = _checkers()
    problems: list[Problem] = []
    for kind in sorted(view.definitions):
        checker = checkers.get(models[kind], _check_references)
        problems.extend(checker(kind, view))
    return problems


__all__ = ["OPTION_SETS_FILE", "REFERENCE_KEYS", "BundleView", "check_semantics"]

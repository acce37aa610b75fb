"""Flow checks of a bundle at `tangram check` and import: each flow's graph, expressions typed
against its form, and the forms, flows and roles it names, located in its file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import DefinitionError, Problem
from engine.expr import ExprType
from engine.flows.assign_checks import form_fields_of
from engine.flows.checks import FLOW_VARIABLES, FlowContext, check_flow
from engine.flows.spec import FlowSpec
from engine.forms._catalog import build_catalog

if TYPE_CHECKING:
    from engine.bundles.semantics import BundleView


def check_flows(kind: str, view: BundleView) -> list[Problem]:
    problems: list[Problem] = []
    present = view.present
    forms = view.definitions.get("forms", {})
    catalogs: dict[str, Mapping[str, ExprType] | None] = {}
    form_fields = form_fields_of(forms.values())
    for key, spec in sorted(view.definitions[kind].items()):
        assert isinstance(spec, FlowSpec)
        form_key = spec.form or spec.trigger.form
        catalog = None
        if form_key is not None and "." not in form_key:
            if form_key not in catalogs:
                catalogs[form_key] = _catalog(form_key, forms, view)
            catalog = catalogs[form_key]
        # Unknown forms and flows are left to the bundle's reference check (one problem each).
        roles = present.get("roles")
        ctx = FlowContext(
            catalog=catalog,
            roles=None if roles is None else frozenset(roles),
            form_fields=form_fields,
        )
        found, _texts = check_flow(spec, ctx)
        problems.extend(p.located(source=view.sources[(kind, key)]) for p in found)
    return problems


def _catalog(
    form_key: str, forms: Mapping[str, Any], view: BundleView
) -> Mapping[str, ExprType] | None:
    from engine.bundles.semantics import _shared_option_sets
    from engine.forms.compiler import compile_form

    spec = forms.get(form_key)
    if spec is None:
        return None
    option_sets, _problems = _shared_option_sets(view)
    try:
        compiled = compile_form(spec, forms=forms, option_sets=option_sets)
    except DefinitionError:
        return None  # the form's own problems are reported by the form checks
    return {**build_catalog(FLOW_VARIABLES), **compiled.catalog}


__all__ = ["check_flows"]

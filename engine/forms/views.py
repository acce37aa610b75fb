"""Saved list views as definitions (`views/` in a bundle): columns, filter, sort, kanban grouping.

`check_views` is the bundle loader's semantic check for the kind: each view's names, filter and
sort are checked against its form with the same rules as a list request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, JsonValue

from engine.errors import DefinitionError, Problem
from engine.forms import fields as f
from engine.forms.compiler import compile_form
from engine.forms.listing import MAX_LIMIT, ListQueryError, build_list_query, resolve_field
from engine.forms.spec import FormSpec, OptionSetSpec
from engine.labels import Label
from engine.spec_base import Key, SpecModel

SortItem = Annotated[str, Field(pattern=r"^[-+]?[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")]
ColumnName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")]


class ViewSpec(SpecModel):
    """A saved list of one form's records: which columns, which records, in which order."""

    schema_version: int = 1
    key: Key
    label: Label
    form: Key
    description: Label | None = None
    columns: tuple[ColumnName, ...] = ()
    filter: JsonValue = Field(None, description="Structured filter tree (docs/lists.md)")
    filter_expr: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    sort: tuple[SortItem, ...] = Field((), description="Field keys, `-` for descending")
    group_by: Key | None = Field(None, description="A select field: show the view as a kanban")
    page_size: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 25


def view_problems(
    view: ViewSpec,
    forms: Mapping[str, FormSpec],
    option_sets: Mapping[str, OptionSetSpec] | None = None,
) -> list[Problem]:
    """Everything wrong with `view` against the bundle's `forms` (paths point into the view)."""
    form = forms.get(view.form)
    if form is None:
        return [Problem("list.unknown-form", "/form", f"no form {view.form!r}")]
    try:
        compiled = compile_form(form, forms=forms, option_sets=option_sets)
    except DefinitionError:
        return []  # the form's own problems are reported on the form
    problems = [
        Problem("list.unknown-field", f"/columns/{i}", f"no field {name!r} in {view.form!r}")
        for i, name in enumerate(view.columns)
        if resolve_field(form, name, forms) is None
    ]
    if view.group_by is not None and not isinstance(
        compiled.fields.get(view.group_by), f.SelectField
    ):
        problems.append(
            Problem("list.bad-group-by", "/group_by", f"{view.group_by!r} is not a select field")
        )
    try:
        build_list_query(
            compiled,
            forms=forms,
            filter=view.filter,
            filter_expr=view.filter_expr,
            sort=view.sort,
            limit=view.page_size,
        )
    except ListQueryError as err:
        problems += [Problem(e.code, e.loc, e.message) for e in err.errors]
    return problems


def check_views(kind: str, bundle_view: Any) -> list[Problem]:
    """Semantic check of a bundle's views, in the shape `engine.bundles.semantics` expects."""
    from engine.bundles.semantics import _shared_option_sets  # the loader's own reading

    option_sets, _problems = _shared_option_sets(bundle_view)  # reported by the form check
    forms = bundle_view.definitions.get("forms", {})
    problems: list[Problem] = []
    for key, spec in sorted(bundle_view.definitions[kind].items()):
        source = bundle_view.sources[(kind, key)]
        found = view_problems(spec, forms, option_sets)
        problems += [p.located(source=source) for p in found]
    return problems


__all__ = ["ViewSpec", "check_views", "view_problems"]

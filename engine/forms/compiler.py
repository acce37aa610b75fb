"""Form compiler: checks a `FormSpec`'s semantics and builds the frozen `CompiledForm`.

Every problem is collected first (paths are JSON pointers into the form file), then raised
together as one `DefinitionError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from types import MappingProxyType
from typing import Any

from engine.errors import DefinitionError, Problem
from engine.expr import Expression, ExpressionError, ExprType, check, parse, references, to_problem
from engine.forms import _catalog
from engine.forms import fields as f
from engine.forms._defaults import DEFAULT_CHECKS, default_problem
from engine.forms.spec import FieldSpec, FormSpec, OptionSetSpec

Owner = f.SubformField | None  # the subform a field sits in, None at the top level

# Field classes that never hold a stored value: lookups and rollups read other records.
_NOT_STORED = (
    f.LookupField,
    f.RollupField,
    f.SectionField,
    f.DividerField,
    f.DescriptionField,
    f.SubformField,
)


@dataclass(frozen=True, slots=True)
class CompiledForm:
    """A checked form: fields by key, parsed expressions and the formula evaluation order."""

    spec: FormSpec
    fields: Mapping[str, FieldSpec]
    subform_fields: Mapping[str, Mapping[str, f.ChildFieldSpec]]
    paths: Mapping[str, str]
    expressions: Mapping[str, Expression]
    formula_order: tuple[str, ...]
    subform_formula_order: Mapping[str, tuple[str, ...]]
    catalog: Mapping[str, ExprType]
    # Resolved options of choice fields by key (`subform/child` inside subforms); a field whose
    # shared option set was not given to the compiler is absent.
    options: Mapping[str, Mapping[str, f.Option]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass(slots=True)
class _Context:
    """Mutable state of one compile run; never escapes `compile_form`."""

    spec: FormSpec
    forms: Mapping[str, FormSpec] | None
    option_sets: Mapping[str, OptionSetSpec] | None
    problems: list[Problem] = field(default_factory=list)
    expressions: dict[str, Expression] = field(default_factory=dict)
    catalogs: dict[str, dict[str, ExprType]] = field(default_factory=dict)

    def report(self, code: str, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(code=code, path=path, message=message, hint=hint))


def compile_form(
    spec: FormSpec,
    *,
    forms: Mapping[str, FormSpec] | None = None,
    option_sets: Mapping[str, OptionSetSpec] | None = None,
) -> CompiledForm:
    """Check `spec` against itself and, when given, the other forms and shared option sets.

    Raises:
        DefinitionError: with every problem found, each with a JSON-pointer path.
    """
    ctx = _Context(spec=spec, forms=forms, option_sets=option_sets)
    _check_keys(ctx)
    _check_form_refs(ctx)
    for path, owner, item in _walk(spec):
        checker = _FIELD_CHECKS.get(type(item))
        if checker is not None:
            checker(ctx, item, path, owner)
        elif item.__class__ in DEFAULT_CHECKS:
            _check_default(ctx, item, path, None)
        _check_common_expressions(ctx, item, path, owner)
    orders = _formula_orders(ctx)
    if ctx.problems:
        raise DefinitionError(ctx.problems)
    return _build(ctx, orders)


def _walk(spec: FormSpec) -> Iterator[tuple[str, f.SubformField | None, object]]:
    """Every field with its path and the subform it sits in (None at the top level)."""
    for index, item in enumerate(spec.fields):
        yield f"/fields/{index}", None, item
        if isinstance(item, f.SubformField):
            for child_index, child in enumerate(item.fields):
                yield f"/fields/{index}/fields/{child_index}", item, child


def _build(ctx: _Context, orders: dict[str, tuple[str, ...]]) -> CompiledForm:
    spec = ctx.spec
    subforms = {
        item.key: MappingProxyType({child.key: child for child in item.fields})
        for item in spec.fields
        if isinstance(item, f.SubformField)
    }
    paths = {item.key: f"/fields/{i}" for i, item in enumerate(spec.fields)}
    return CompiledForm(
        spec=spec,
        fields=MappingProxyType(spec.field_map()),
        subform_fields=MappingProxyType(subforms),
        paths=MappingProxyType(paths),
        expressions=MappingProxyType(dict(ctx.expressions)),
        formula_order=orders.pop(""),
        subform_formula_order=MappingProxyType(orders),
        catalog=MappingProxyType(_catalog_for(ctx, None)),
        options=MappingProxyType(_resolved_options(ctx)),
    )


def _resolved_options(ctx: _Context) -> dict[str, Mapping[str, f.Option]]:
    """Options of every choice field whose option source is known, by field (or `sub/child`)."""
    found: dict[str, Mapping[str, f.Option]] = {}
    for _path, owner, item in _walk(ctx.spec):
        if isinstance(item, f._Choice):
            options = _choice_options(ctx, item)
            if options is not None:
                key = item.key if owner is None else f"{owner.key}/{item.key}"
                found[key] = MappingProxyType({option.key: option for option in options})
    return found


# --- keys and references -----------------------------------------------------------------


def _check_keys(ctx: _Context) -> None:
    _check_unique_keys(ctx, ctx.spec.fields, "/fields")
    for index, item in enumerate(ctx.spec.fields):
        if isinstance(item, f.SubformField):
            _check_unique_keys(ctx, item.fields, f"/fields/{index}/fields")


def _check_unique_keys(ctx: _Context, items: tuple[object, ...], base: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = item.key  # type: ignore[attr-defined]
        path = f"{base}/{index}/key"
        if key in seen:
            ctx.report("form.duplicate-key", path, f"field key {key!r} is used twice")
        elif key in _catalog.RESERVED_KEYS:
            ctx.report(
                "form.reserved-key",
                path,
                f"{key!r} is reserved (a system column or an expression keyword)",
            )
        seen.add(key)


def _check_form_refs(ctx: _Context) -> None:
    spec = ctx.spec
    if spec.title_field is not None:
        _require_field(ctx, spec.title_field, "/title_field", stored=True)
    for name in ("indexes", "unique"):
        for i, keys in enumerate(getattr(spec, name)):
            for j, key in enumerate(keys):
                # plain indexes may also cover system columns (a period filter on created_at)
                if name == "indexes" and key in _catalog.SYSTEM_COLUMNS:
                    continue
                _require_field(ctx, key, f"/{name}/{i}/{j}", stored=True)
    if spec.public is not None:
        for i, key in enumerate(spec.public.fields):
            _require_field(ctx, key, f"/public/fields/{i}", stored=False)
    _check_layout(ctx)


def _require_field(ctx: _Context, key: str, path: str, *, stored: bool) -> None:
    item = ctx.spec.field_map().get(key)
    if item is None:
        ctx.report("form.unknown-field", path, f"no field {key!r} in form {ctx.spec.key!r}")
    elif stored and isinstance(item, _NOT_STORED):
        ctx.report("form.not-stored", path, f"field {key!r} has no column of its own")


def _check_layout(ctx: _Context) -> None:
    layout = ctx.spec.layout
    if layout is None:
        return
    placed: set[str] = set()
    tab_paths = [(f"/layout/tabs/{t}/sections", tab.sections) for t, tab in enumerate(layout.tabs)]
    keys: set[str] = set()
    for t, tab in enumerate(layout.tabs):
        _claim_key(ctx, keys, tab.key, f"/layout/tabs/{t}/key")
    for base, sections in [*tab_paths, ("/layout/sections", layout.sections)]:
        for s, section in enumerate(sections):
            _claim_key(ctx, keys, section.key, f"{base}/{s}/key")
            if section.visible_if is not None:
                path = f"{base}/{s}/visible_if"
                _check_expr(ctx, section.visible_if, path, _catalog_for(ctx, None), "boolean")
            for c, cell in enumerate(section.fields):
                key = cell if isinstance(cell, str) else cell.field
                path = f"{base}/{s}/fields/{c}"
                _require_field(ctx, key, path, stored=False)
                if key in placed:
                    ctx.report("form.duplicate-placement", path, f"{key!r} is placed twice")
                placed.add(key)


def _claim_key(ctx: _Context, seen: set[str], key: str, path: str) -> None:
    if key in seen:
        ctx.report("form.duplicate-key", path, f"layout key {key!r} is used twice")
    seen.add(key)


def _target_form(ctx: _Context, ref: str) -> FormSpec | None:
    return None if ctx.forms is None else ctx.forms.get(ref)


def _check_relation(ctx: _Context, item: f.RelationField, path: str, owner: Owner) -> None:
    if ctx.forms is None:
        return
    target = ctx.forms.get(item.form)
    if target is None and "." not in item.form:
        ctx.report("form.unknown-form", f"{path}/form", f"no form {item.form!r}")
        return
    if target is not None and item.display_field is not None:
        if item.display_field not in target.field_map():
            message = f"no field {item.display_field!r} in {item.form}"
            ctx.report("form.unknown-field", f"{path}/display_field", message)
    if target is not None and item.inverse is not None:
        inverse = target.field_map().get(item.inverse)
        if not isinstance(inverse, f.RelationField) or inverse.form != ctx.spec.key:
            ctx.report(
                "form.bad-inverse",
                f"{path}/inverse",
                f"{item.form}.{item.inverse} is not a relation back to {ctx.spec.key!r}",
            )
    if target is not None and item.filter is not None:
        names = _catalog.catalog_names(target.fields, ctx.forms)
        own = _catalog.catalog_names(ctx.spec.fields, None, prefix="$record.")
        catalog = _catalog.build_catalog({**names, **own})
        _check_expr(ctx, item.filter, f"{path}/filter", catalog, "boolean")


def _siblings(ctx: _Context, owner: f.SubformField | None) -> dict[str, object]:
    top: dict[str, object] = dict(ctx.spec.field_map())
    if owner is not None:
        top.update({child.key: child for child in owner.fields})
    return top


def _check_lookup(ctx: _Context, item: f.LookupField, path: str, owner: Owner) -> None:
    relation = _siblings(ctx, owner).get(item.relation)
    if relation is None:
        ctx.report("form.unknown-field", f"{path}/relation", f"no field {item.relation!r}")
    elif not isinstance(relation, f.RelationField):
        ctx.report(
            "form.not-a-relation", f"{path}/relation", f"{item.relation!r} is not a relation"
        )
    else:
        target = _target_form(ctx, relation.form)
        if target is not None and item.field not in _catalog.catalog_names(target.fields, None):
            ctx.report(
                "form.unknown-field", f"{path}/field", f"no field {item.field!r} in {relation.form}"
            )


def _rollup_source(
    ctx: _Context, item: f.RollupField, path: str, owner: Owner
) -> tuple[tuple[object, ...], bool] | None:
    """The fields the rollup aggregates over, and whether they are known; None on error."""
    source = _siblings(ctx, owner).get(item.relation)
    if isinstance(source, f.SubformField):
        return tuple(source.fields), True
    if isinstance(source, f.RelationField):
        target = _target_form(ctx, source.form)
        return (tuple(target.fields), True) if target is not None else ((), False)
    code = "form.unknown-field" if source is None else "form.not-a-relation"
    ctx.report(code, f"{path}/relation", f"{item.relation!r} is not a relation or subform")
    return None


def _check_rollup(ctx: _Context, item: f.RollupField, path: str, owner: Owner) -> None:
    found = _rollup_source(ctx, item, path, owner)
    if found is None or not found[1]:
        return
    names = _catalog.catalog_names(found[0], ctx.forms)
    if item.field is not None and item.field not in names:
        ctx.report("form.unknown-field", f"{path}/field", f"no field {item.field!r} to aggregate")
    if item.filter is not None:
        _check_expr(ctx, item.filter, f"{path}/filter", _catalog.build_catalog(names), "boolean")


def _check_option_set(ctx: _Context, name: str | None, path: str) -> None:
    if name is None or any(s.key == name for s in ctx.spec.option_sets):
        return
    if ctx.option_sets is not None and name not in ctx.option_sets:
        ctx.report("form.unknown-option-set", f"{path}/option_set", f"no option set {name!r}")


def _choice_options(ctx: _Context, item: f._Choice) -> tuple[f.Option, ...] | None:
    """The options a choice field offers, or None when its option set is not known."""
    if item.option_set is None:
        return item.options
    local = {s.key: s for s in ctx.spec.option_sets}
    shared = ctx.option_sets or {}
    found = local.get(item.option_set) or shared.get(item.option_set)
    return None if found is None else found.options


def _option_keys(ctx: _Context, item: f._Choice) -> set[str] | None:
    """The option keys a choice field offers, or None when its option set is not known."""
    options = _choice_options(ctx, item)
    return None if options is None else {option.key for option in options}


def _check_choice(ctx: _Context, item: f._Choice, path: str, owner: Owner) -> None:
    _check_option_set(ctx, item.option_set, path)
    _check_default(ctx, item, path, _option_keys(ctx, item))


def _check_default(ctx: _Context, item: object, path: str, options: set[str] | None) -> None:
    message = default_problem(item, options)
    if message is not None:
        ctx.report("form.bad-default", f"{path}/default", message)


def _check_formula(ctx: _Context, item: f.FormulaField, path: str, owner: Owner) -> None:
    _check_option_set(ctx, item.option_set, path)
    expected = _catalog.RESULT_TYPES[item.result_type]
    _check_expr(ctx, item.expr, f"{path}/expr", _catalog_for(ctx, owner), expected)


_FieldCheck = Callable[[_Context, Any, str, Owner], None]
_FIELD_CHECKS: dict[type, _FieldCheck] = {
    f.RelationField: _check_relation,
    f.LookupField: _check_lookup,
    f.RollupField: _check_rollup,
    f.SelectField: _check_choice,
    f.MultiselectField: _check_choice,
    f.CascadeField: _check_choice,
    f.FormulaField: _check_formula,
}


# --- expressions -------------------------------------------------------------------------


def _catalog_for(ctx: _Context, owner: f.SubformField | None) -> dict[str, ExprType]:
    """The catalog for expressions at the top level, or inside the rows of `owner`."""
    cache_key = "" if owner is None else owner.key
    if cache_key not in ctx.catalogs:
        names = _catalog.catalog_names(ctx.spec.fields, ctx.forms)
        if owner is not None:
            names.update(_catalog.catalog_names(owner.fields, ctx.forms))
        ctx.catalogs[cache_key] = _catalog.build_catalog(names)
    return ctx.catalogs[cache_key]


def _check_common_expressions(ctx: _Context, item: object, path: str, owner: Owner) -> None:
    catalog = _catalog_for(ctx, owner)
    for name in ("required_if", "visible_if"):
        text = getattr(item, name, None)
        if text is not None:
            _check_expr(ctx, text, f"{path}/{name}", catalog, "boolean")
    default_expr = getattr(item, "default_expr", None)
    if default_expr is not None:
        _check_expr(ctx, default_expr, f"{path}/default_expr", catalog, _catalog.type_name_of(item))
    for index, rule in enumerate(getattr(item, "validations", ())):
        _check_expr(ctx, rule.expr, f"{path}/validations/{index}/expr", catalog, "boolean")


def _check_expr(
    ctx: _Context, text: str, path: str, catalog: Mapping[str, ExprType], expected: str | None
) -> None:
    try:
        expression = parse(text)
        actual = check(expression, catalog)
    except ExpressionError as err:
        problem = to_problem(err, path=path, source=None)
        hint = f"expression error {err.code}"
        ctx.report("form.bad-expression", path, problem.message, hint=hint)
        return
    ctx.expressions[path] = expression
    if expected is not None and not _compatible(actual, expected):
        ctx.report(
            "form.expression-type",
            path,
            f"expression gives {actual}, expected {expected}",
        )


def _compatible(actual: ExprType, expected: str) -> bool:
    return _catalog.expr_type(expected).accepts(actual)


def _formula_orders(ctx: _Context) -> dict[str, tuple[str, ...]]:
    """Formula evaluation order of the top level ("") and of each subform's rows."""
    orders = {"": _formula_order(ctx, ctx.spec.fields, "/fields")}
    for index, item in enumerate(ctx.spec.fields):
        if isinstance(item, f.SubformField):
            orders[item.key] = _formula_order(ctx, item.fields, f"/fields/{index}/fields")
    return orders


def _formula_order(ctx: _Context, items: Sequence[object], base: str) -> tuple[str, ...]:
    """Formulas of `items`, each after the formulas it reads; cycles are reported."""
    paths = {
        item.key: f"{base}/{i}/expr"
        for i, item in enumerate(items)
        if isinstance(item, f.FormulaField)
    }
    graph: dict[str, set[str]] = {}
    for key, path in paths.items():
        expression = ctx.expressions.get(path)
        used = references(expression) if expression is not None else frozenset()
        graph[key] = {name.split(".", 1)[0] for name in used} & paths.keys()
    try:
        return tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        cycle = " -> ".join(err.args[1])
        for key in dict.fromkeys(err.args[1]):
            ctx.report("form.formula-cycle", paths[key], f"formulas depend on each other: {cycle}")
        return ()

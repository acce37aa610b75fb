"""The validation plan of a compiled form: per field, its codec and its parsed expressions.

Built once per `CompiledForm` (from the expressions the compiler already parsed, never
re-parsing) and cached for the life of the form object.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from threading import Lock
from typing import Any

from engine.errors import SubmissionError
from engine.expr import Expression
from engine.forms import fields as f
from engine.forms.compiler import CompiledForm
from engine.forms.values import CODECS, Codec, coerce

# Computed from other records, so not stored in the form's table.
NOT_STORED = (f.LookupField, f.RollupField)
MAX_CACHED_PLANS = 512
_NUMERIC = (f.NumberField, f.MoneyField, f.PercentField)


@dataclass(frozen=True, slots=True)
class Rule:
    """A custom validation: `expr` must not be FALSE."""

    expr: Expression
    spec: f.Validation


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One value field: how to read it and the expressions that govern it."""

    key: str
    field: Any
    codec: Codec
    stored: bool
    visible: tuple[Expression, ...]
    required_if: Expression | None
    default_expr: Expression | None
    default: Any
    rules: tuple[Rule, ...]
    formula: Expression | None  # the formula of a formula field, the filter of a rollup
    computed: bool
    required: bool
    retired: bool  # column kept, value kept as stored, takes no input
    min_rows: int | None

    @property
    def checked(self) -> bool:
        """Whether required or custom rules apply to it at all."""
        if self.retired:
            return False
        return bool(self.rules or self.min_rows) or (
            not self.computed and (self.required or self.required_if is not None)
        )


@dataclass(frozen=True, slots=True)
class RowsPlan:
    """The fields of a subform's rows and their formula order."""

    fields: Mapping[str, FieldPlan]
    formula_order: tuple[str, ...]
    inputs: tuple[FieldPlan, ...]  # fields that take input (not computed)
    checked: tuple[FieldPlan, ...]
    conditional: tuple[FieldPlan, ...]  # fields with a visible_if (their own or a section's)


@dataclass(frozen=True, slots=True)
class FormPlan:
    fields: Mapping[str, FieldPlan]
    subforms: Mapping[str, RowsPlan]
    formula_order: tuple[str, ...]
    rollups: tuple[FieldPlan, ...]  # rollups over this form's subforms, computed in Python
    inputs: tuple[FieldPlan, ...]
    checked: tuple[FieldPlan, ...]
    conditional: tuple[FieldPlan, ...]
    numeric: tuple[str, ...]  # fields whose canonical value is a Decimal
    scalars: tuple[str, ...]  # stored fields other than subforms
    defaults: Mapping[str, Any]  # constant defaults of every input field (None when absent)
    default_exprs: tuple[FieldPlan, ...]  # input fields with a default_expr, in field order


_cache: OrderedDict[int, tuple[CompiledForm, FormPlan]] = OrderedDict()
_lock = Lock()


def plan_for(form: CompiledForm) -> FormPlan:
    """The plan of `form`, built on first use (keyed by object identity)."""
    with _lock:
        hit = _cache.get(id(form))
        if hit is not None and hit[0] is form:
            _cache.move_to_end(id(form))
            return hit[1]
    plan = _build(form)
    with _lock:
        _cache[id(form)] = (form, plan)
        while len(_cache) > MAX_CACHED_PLANS:
            _cache.popitem(last=False)
    return plan


def _build(form: CompiledForm) -> FormPlan:
    sections = _section_visibility(form)
    fields: dict[str, FieldPlan] = {}
    subforms: dict[str, RowsPlan] = {}
    for key, item in form.fields.items():
        if type(item) not in CODECS:
            continue
        path = form.paths[key]
        fields[key] = _field_plan(form, item, path, sections.get(key, ()), None)
        if isinstance(item, f.SubformField):
            subforms[key] = _rows_plan(form, item, path)
    rollups = tuple(
        plan
        for plan in fields.values()
        if isinstance(plan.field, f.RollupField) and plan.field.relation in subforms
    )
    numeric = tuple(key for key, plan in fields.items() if isinstance(plan.field, _NUMERIC))
    scalars = tuple(key for key, plan in fields.items() if plan.stored and key not in subforms)
    groups = _groups(fields)
    inputs = [plan for plan in groups[0] if not plan.retired]
    defaults = {plan.key: None if plan.retired else plan.default for plan in groups[0]}
    exprs = tuple(plan for plan in inputs if plan.default_expr is not None)
    return FormPlan(
        fields, subforms, form.formula_order, rollups, *groups, numeric, scalars, defaults, exprs
    )


def _groups(
    fields: Mapping[str, FieldPlan],
) -> tuple[tuple[FieldPlan, ...], tuple[FieldPlan, ...], tuple[FieldPlan, ...]]:
    plans = tuple(fields.values())
    return (
        tuple(p for p in plans if not p.computed),
        tuple(p for p in plans if p.checked),
        tuple(p for p in plans if p.visible and not p.retired),
    )


def _rows_plan(form: CompiledForm, item: f.SubformField, path: str) -> RowsPlan:
    children = {
        child.key: _field_plan(form, child, f"{path}/fields/{index}", (), item.key)
        for index, child in enumerate(item.fields)
        if type(child) in CODECS
    }
    order = form.subform_formula_order.get(item.key, ())
    return RowsPlan(children, order, *_groups(children))


def _field_plan(
    form: CompiledForm,
    item: Any,
    path: str,
    section_rules: tuple[Expression, ...],
    owner: str | None,
) -> FieldPlan:
    exprs = form.expressions
    own_visible = exprs.get(f"{path}/visible_if")
    found = ((own_visible,) if own_visible is not None else ()) + section_rules
    visible = tuple({expr.text: expr for expr in found}.values())  # a section may repeat it
    rules = tuple(
        Rule(exprs[f"{path}/validations/{i}/expr"], rule)
        for i, rule in enumerate(getattr(item, "validations", ()))
        if f"{path}/validations/{i}/expr" in exprs
    )
    formula = exprs.get(f"{path}/expr") or exprs.get(f"{path}/filter")
    codec = CODECS[type(item)]
    return FieldPlan(
        key=item.key,
        field=item,
        codec=codec,
        stored=not isinstance(item, NOT_STORED),
        visible=visible,
        required_if=exprs.get(f"{path}/required_if"),
        default_expr=exprs.get(f"{path}/default_expr"),
        default=_constant_default(form, item, owner),
        rules=rules,
        formula=formula if isinstance(item, f.FormulaField | f.RollupField) else None,
        computed=codec.computed,
        required=bool(getattr(item, "required", False)),
        retired=bool(item.retired),
        min_rows=getattr(item, "min_rows", None),
    )


def _constant_default(form: CompiledForm, item: Any, owner: str | None) -> Any:
    raw = getattr(item, "default", None)
    if raw is None or CODECS[type(item)].computed:
        return None
    loc = item.key if owner is None else f"{owner}/{item.key}"
    try:
        return coerce(item, raw, loc=loc, options=form.options)
    except SubmissionError:
        return None  # the compiler reports bad defaults; a record never gets one


def _section_visibility(form: CompiledForm) -> dict[str, tuple[Expression, ...]]:
    """Field key → the visible_if expressions of the layout sections that hold it."""
    layout = form.spec.layout
    found: dict[str, tuple[Expression, ...]] = {}
    if layout is None:
        return found
    bases = [(f"/layout/tabs/{t}/sections", tab.sections) for t, tab in enumerate(layout.tabs)]
    bases.append(("/layout/sections", layout.sections))
    for base, sections in bases:
        for s, section in enumerate(sections):
            expr = form.expressions.get(f"{base}/{s}/visible_if")
            if expr is None:
                continue
            for cell in section.fields:
                key = cell if isinstance(cell, str) else cell.field
                found[key] = (*found.get(key, ()), expr)
    return found

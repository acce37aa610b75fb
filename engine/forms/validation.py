"""Submission validation: one create or partial update checked against a compiled form.

`validate_submission` coerces what was sent, merges it over the stored record (or the
defaults), recomputes formulas and subform rollups, applies visibility, required and custom
rules, and returns the complete clean record, or raises one `SubmissionError` with every
problem found. The rules are described in docs/records.md ("Values and validation").
"""

from __future__ import annotations

import datetime as dt
from collections import ChainMap
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import FieldError, SubmissionError
from engine.expr import Expression
from engine.forms._computation import FAILED, Evaluator, formula_value, rollup_value
from engine.forms._validation_plan import FieldPlan, FormPlan, RowsPlan, plan_for
from engine.forms.compiler import CompiledForm
from engine.forms.values import Coercion, to_json
from engine.forms.values._rows import ROW_ID, coerce_cell
from engine.labels import label_text


@dataclass(frozen=True, slots=True)
class EvalContext:
    """Who submits, and when: the clock, the actor and the zone that TODAY and naive input use."""

    now: dt.datetime
    actor: int | None = None
    departments: tuple[int, ...] = ()
    timezone: str = "UTC"
    language: str = "en"

    def variables(self) -> dict[str, Any]:
        """The `$user` variables of expressions (`$now`/`$today` come from the clock)."""
        department = self.departments[0] if self.departments else None
        return {"$user": self.actor, "$user.id": self.actor, "$user.department": department}


def validate_submission(
    form: CompiledForm,
    data: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None,
    context: EvalContext,
    related: Mapping[str, Any] | None = None,
    locked: Collection[str] = (),
    lenient: bool = False,
) -> dict[str, Any]:
    """The clean record after applying `data` to `current` (None: a create).

    Args:
        current: the stored record (canonical values; system columns such as `id` may be
            included and are visible to expressions), or None to create.
        related: values of other records that expressions read, by name: lookups
            (`product_line`) and relation paths (`device.product_model`).
        locked: fields the caller may not change (field permissions); sending another value
            than the stored one is `submission.read-only`.
        lenient: read text input as CSV import does (see `engine.forms.values.coerce`).

    Returns:
        Every stored field's value (None for blank); subforms as lists of row dicts.

    Raises:
        SubmissionError: with one `FieldError` per problem, all of them at once.
    """
    run = _Run(form, context, current, related, frozenset(locked), lenient)
    run.read(data)
    run.start()
    run.compute()
    run.apply_visibility()
    run.check_echoes()
    run.check_rules()
    if run.errors:
        raise SubmissionError(run.errors)
    return run.clean()


def unique_fields(form: CompiledForm) -> tuple[tuple[str, ...], ...]:
    """Field sets that must be unique: single `unique: true` fields, then composite ones."""
    single = tuple((key,) for key, item in form.fields.items() if getattr(item, "unique", False))
    return single + tuple(tuple(keys) for keys in form.spec.unique)


_MISSING = object()


def _blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


class _Run:
    """The state of one validation; private to `validate_submission`."""

    def __init__(
        self,
        form: CompiledForm,
        context: EvalContext,
        current: Mapping[str, Any] | None,
        related: Mapping[str, Any] | None,
        locked: frozenset[str],
        lenient: bool,
    ) -> None:
        self.form = form
        self.plan: FormPlan = plan_for(form)
        self.context = context
        self.creating = current is None
        self.current = _canonical(self.plan, current) if current is not None else {}
        self.locked = locked
        self.lenient = lenient
        self.evaluate = Evaluator(context.now, context.timezone)
        self.errors: list[FieldError] = []
        self.bad: set[str] = set()
        self.sent: dict[str, Any] = {}
        self.base: dict[str, Any] = {}
        # related values are fresher than anything the stored record may hold under their names
        self.env: dict[str, Any] = {**context.variables(), **self.current, **(related or {})}
        self.echoed: dict[str, Any] = {}
        self.memo: dict[str, Any] = {}
        self.hidden: set[str] = set()
        self.hidden_rows: dict[str, list[set[str]]] = {}

    def error(self, loc: str, code: str, message: str) -> None:
        self.errors.append(FieldError(loc, code, message))

    # --- input -----------------------------------------------------------------------------

    def read(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise SubmissionError(
                [FieldError("", "submission.wrong-type", "a record is a JSON object")]
            )
        for name, raw in data.items():
            plan = self.plan.fields.get(name) if isinstance(name, str) else None
            if plan is None:
                message = f"no field {str(name)[:64]!r} in form {self.form.key!r}"
                self.error(str(name)[:200], "submission.unknown-field", message)
            elif plan.computed or plan.retired:
                self._read_computed(plan, raw)
            else:
                self._read_value(plan, raw)

    def _read_computed(self, plan: FieldPlan, raw: Any) -> None:
        """Computed and retired fields take no input, but a value read may be sent back."""
        held = self.env.get(plan.key)  # stored, or given in `related` (lookups)
        if raw is None or raw == to_json(plan.field, held):
            return
        if plan.retired:
            message = f"{plan.key!r} is retired and takes no input"
            self.error(plan.key, "submission.retired-field", message)
        else:
            self.echoed[plan.key] = raw  # may still match the value computed from this input

    def check_echoes(self) -> None:
        """Computed values sent must equal the stored or the newly computed value."""
        for key, raw in self.echoed.items():
            if raw != to_json(self.plan.fields[key].field, self.env.get(key)):
                message = f"{key!r} is computed and takes no input"
                self.error(key, "submission.read-only", message)

    def _read_value(self, plan: FieldPlan, raw: Any) -> None:
        held = self.current.get(plan.key)
        run = Coercion(plan.key, self.lenient, self.form.options, self.context.timezone, held)
        count = len(self.errors)
        value = coerce_cell(plan.field, raw, run, self.errors)
        if len(self.errors) > count:
            self.bad.add(plan.key)
        elif plan.key in self.locked and value != held:
            self.error(plan.key, "submission.read-only", f"{plan.key!r} may not be changed")
            self.bad.add(plan.key)
        else:
            self.sent[plan.key] = value

    # --- merge -----------------------------------------------------------------------------

    def start(self) -> None:
        """Stored values (or defaults on create) with the sent values over them."""
        env = self.env
        sent, current = self.sent, self.current
        for plan in self.plan.inputs:
            key = plan.key
            env[key] = sent[key] if key in sent else current.get(key)
        if self.creating:
            self._defaults()
        else:
            self.base = {key: self.current.get(key) for key in self.plan.fields}
        for key, rows_plan in self.plan.subforms.items():
            rows = env.get(key) or []
            from_input = key in self.sent
            env[key] = [self._row(rows_plan, row, from_input) for row in rows]

    def _defaults(self) -> None:
        """Constant defaults first, then default expressions in field order, which see them."""
        env, sent, bad = self.env, self.sent, self.bad
        self.base = base = dict(self.plan.defaults)
        for key, value in base.items():
            if value is not None and key not in sent and key not in bad:
                env[key] = value
        for plan in self.plan.default_exprs:
            key = plan.key
            base[key] = value = self._default(plan, env)
            if key not in sent and key not in bad:
                env[key] = value

    def _default(self, plan: FieldPlan, env: Mapping[str, Any]) -> Any:
        if plan.default_expr is None:
            return plan.default
        result = self.evaluate(plan.default_expr, env)
        if result is FAILED or result is None:
            return None
        loc = plan.key
        run = Coercion(loc, False, self.form.options, self.context.timezone)
        ignored: list[FieldError] = []
        return coerce_cell(plan.field, _as_input(result), run, ignored)

    def _row(self, rows_plan: RowsPlan, row: Mapping[str, Any], from_input: bool) -> dict[str, Any]:
        out: dict[str, Any] = {ROW_ID: row[ROW_ID]} if row.get(ROW_ID) is not None else {}
        scope = ChainMap(out, self.env)
        for key, plan in rows_plan.fields.items():
            if plan.computed:
                continue
            if key in row or not from_input:
                out[key] = row.get(key)
            else:
                out[key] = self._default(plan, scope)
        return out

    # --- computed values -------------------------------------------------------------------

    def compute(self) -> None:
        env = self.env
        for key, rows_plan in self.plan.subforms.items():
            for row in env[key]:
                self._compute_row(rows_plan, row)
        for plan in self.plan.rollups:
            env[plan.key] = rollup_value(plan, env[plan.field.relation], env, self.evaluate)
        for key in self.plan.formula_order:
            plan = self.plan.fields[key]
            env[key] = formula_value(plan.field, self.evaluate(plan.formula, env))

    def _compute_row(self, rows_plan: RowsPlan, row: dict[str, Any]) -> None:
        scope = ChainMap(row, self.env)
        for key in rows_plan.formula_order:
            plan = rows_plan.fields[key]
            row[key] = formula_value(plan.field, self.evaluate(plan.formula, scope))

    # --- visibility ------------------------------------------------------------------------

    def _condition(self, expr: Expression | None, env: Mapping[str, Any]) -> Any:
        """Evaluate a condition; on the record itself, once per pass for each text."""
        if expr is None or env is not self.env:
            return self.evaluate(expr, env)
        found = self.memo.get(expr.text, _MISSING)
        if found is _MISSING:
            found = self.memo[expr.text] = self.evaluate(expr, env)
        return found

    def _visible(self, plan: FieldPlan, env: Mapping[str, Any]) -> bool:
        return all(self._condition(expr, env) in (True, FAILED) for expr in plan.visible)

    def apply_visibility(self) -> None:
        """Hidden fields keep their stored value; sending another one is an error."""
        changed = False
        self.hidden = set()
        self.memo.clear()
        for plan in self.plan.conditional:
            key = plan.key
            if self._visible(plan, self.env):
                continue
            self.hidden.add(key)
            if plan.computed:
                continue
            if key in self.sent and not _blank(self.sent[key]) and self.sent[key] != self.base[key]:
                self.error(key, "submission.hidden-field", f"{key!r} is hidden and takes no value")
            if self.env.get(key) != self.base.get(key):
                self.env[key] = self._restored(key)
                changed = True
        for key, rows_plan in self.plan.subforms.items():
            self._row_visibility(key, rows_plan)
        if changed:
            self.compute()

    def _restored(self, key: str) -> Any:
        """The value a hidden field keeps: the stored one (its default on create)."""
        value = self.base.get(key)
        rows_plan = self.plan.subforms.get(key)
        if rows_plan is None:
            return value
        return [self._row(rows_plan, row, False) for row in value or ()]  # copies, never aliases

    def _row_visibility(self, key: str, rows_plan: RowsPlan) -> None:
        """Hidden cells of the rows sent in this submission may not hold a value."""
        hidden_rows: list[set[str]] = []
        sent = key in self.sent and key not in self.hidden
        for index, row in enumerate(self.env[key]):
            scope = ChainMap(row, self.env)
            hidden = {plan.key for plan in rows_plan.conditional if not self._visible(plan, scope)}
            for name in hidden if sent else ():
                if not rows_plan.fields[name].computed and not _blank(row.get(name)):
                    loc = f"{key}/{index}/{name}"
                    self.error(loc, "submission.hidden-field", f"{name!r} is hidden here")
            hidden_rows.append(hidden)
        self.hidden_rows[key] = hidden_rows

    # --- rules -----------------------------------------------------------------------------

    def check_rules(self) -> None:
        self.memo.clear()
        for plan in self.plan.checked:
            key = plan.key
            if key not in self.hidden and key not in self.bad:
                self._check_field(plan, key, self.env, self.env.get(key))
        for key, rows_plan in self.plan.subforms.items():
            if key in self.hidden or key in self.bad:
                continue
            for index, row in enumerate(self.env[key]):
                scope = ChainMap(row, self.env)
                hidden = self.hidden_rows[key][index]
                for plan in rows_plan.checked:
                    name = plan.key
                    if name not in hidden:
                        self._check_field(plan, f"{key}/{index}/{name}", scope, row.get(name))

    def _check_field(self, plan: FieldPlan, loc: str, env: Mapping[str, Any], value: Any) -> None:
        if not plan.computed and _blank(value):
            if plan.required or self._condition(plan.required_if, env) is True:
                self.error(loc, "submission.required", "a value is required")
                return
        min_rows = plan.min_rows
        if min_rows is not None and len(value or ()) < min_rows:
            self.error(loc, "submission.too-few", f"at least {min_rows} rows are needed")
        for rule in plan.rules:
            result = self.evaluate(rule.expr, env)
            if result is FAILED:
                message = "the rule could not be evaluated on these values"
                self.error(loc, "submission.rule-error", message)
            elif result is False:
                code = f"validation.{rule.spec.code}" if rule.spec.code else "submission.validation"
                self.error(loc, code, label_text(rule.spec.message, self.context.language))

    # --- output ----------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        env = self.env
        out: dict[str, Any] = {key: env.get(key) for key in self.plan.scalars}
        for key, rows_plan in self.plan.subforms.items():
            out[key] = [self._clean_row(rows_plan, row) for row in env[key]]
        return out

    @staticmethod
    def _clean_row(rows_plan: RowsPlan, row: Mapping[str, Any]) -> dict[str, Any]:
        out = {ROW_ID: row[ROW_ID]} if ROW_ID in row else {}
        out.update({key: row.get(key) for key, plan in rows_plan.fields.items() if plan.stored})
        return out


def _canonical(plan: FormPlan, current: Mapping[str, Any]) -> dict[str, Any]:
    """The stored record with numbers as Decimal (float columns return floats)."""
    out = dict(current)
    for key in plan.numeric:
        value = out.get(key)
        if isinstance(value, float):
            out[key] = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = Decimal(value)
    return out


def _as_input(value: Any) -> Any:
    """An expression result as codec input: lists for tuples, whole Decimals as ints."""
    if isinstance(value, tuple):
        return [_as_input(item) for item in value]
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


__all__ = ["EvalContext", "unique_fields", "validate_submission"]

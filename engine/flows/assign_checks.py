"""Publish checks of the `match_rule` and `pick_assignee` actions: the forms they read exist and
have the fields named, the record fields they write exist, expressions parse (typed against
the flow's form where they only read the record). Problems carry JSON-pointer paths.

The other forms' field keys come from `FlowContext.form_fields`; `form_fields_of` builds that
map from form specs (a bundle check) or an installed app's definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from engine.expr import ExpressionError, ExprType, parse, to_problem
from engine.flows.spec_assign import LOAD, SKILL_LEVEL, MatchRule, PickAssignee

if TYPE_CHECKING:
    from engine.errors import Problem
    from engine.flows.checks import FlowContext

UNKNOWN_FIELD = "flow.unknown-field"
UNKNOWN_FORM = "flow.unknown-form"
MISSING_OPTION = "flow.missing-option"


class CheckRun(Protocol):
    """What checks.py's run offers: its context, problems and expression texts."""

    ctx: FlowContext
    problems: list[Problem]
    texts: dict[str, str]

    def report(self, code: str, path: str, message: str, hint: str | None = None) -> None: ...

    def expr(self, text: str | None, path: str, expected: ExprType | None) -> None: ...


def check_assign_action(run: CheckRun, action: object, path: str) -> None:
    if isinstance(action, MatchRule):
        _check_match_rule(run, action, path)
    elif isinstance(action, PickAssignee):
        _check_pick(run, action, path)


def _check_match_rule(run: CheckRun, action: MatchRule, path: str) -> None:
    fields = _form(run, action.form, f"{path}/form")
    _field(run, fields, action.form, action.order_by, f"{path}/order_by")
    _field(run, fields, action.form, action.active_field, f"{path}/active_field")
    for name, text in action.criteria.items():
        _field(run, fields, action.form, name, f"{path}/criteria/{name}")
        run.expr(text, f"{path}/criteria/{name}", None)
    if action.keywords is not None:
        _field(run, fields, action.form, action.keywords.field, f"{path}/keywords/field")
        run.expr(action.keywords.text, f"{path}/keywords/text", None)
    _writes(run, action.set, f"{path}/set")  # they see $rule: syntax only
    catalog = run.ctx.catalog
    for name, source in action.copy_fields.items():
        if catalog is not None and name not in catalog:
            run.report(UNKNOWN_FIELD, f"{path}/copy_fields/{name}", f"no field {name!r}")
        _field(run, fields, action.form, source.partition(".")[0], f"{path}/copy_fields/{name}")


def _check_pick(run: CheckRun, action: PickAssignee, path: str) -> None:
    form = action.directory
    fields = _form(run, form, f"{path}/directory")
    _field(run, fields, form, action.user_field, f"{path}/user_field")
    _field(run, fields, form, action.stamp_field, f"{path}/stamp_field")
    for i, spec in enumerate(action.filters):
        base = f"{path}/filters/{i}"
        if spec.field != LOAD:
            _field(run, fields, form, spec.field, f"{base}/field")
        _field(run, fields, form, spec.limit_field, f"{base}/limit_field")
        _parse_only(run, spec.value, f"{base}/value")  # may read $vars or the candidate
        _parse_only(run, spec.when, f"{base}/when")
    for r, rank_key in enumerate(action.rank):
        if rank_key.by == SKILL_LEVEL:
            if not any(f.test == "skills" for f in action.filters):
                run.report(
                    MISSING_OPTION,
                    f"{path}/rank/{r}/by",
                    f"{SKILL_LEVEL} ranks by a skills filter; there is none",
                )
        elif rank_key.by != LOAD:
            _field(run, fields, form, rank_key.by, f"{path}/rank/{r}/by")
    uses_load = any(k.by == LOAD for k in action.rank) or any(
        f.field == LOAD for f in action.filters
    )
    if action.load is not None:
        load_fields = _form(run, action.load.form, f"{path}/load/form")
        _field(
            run, load_fields, action.load.form, action.load.user_field, f"{path}/load/user_field"
        )
        _parse_only(run, action.load.where, f"{path}/load/where")
    elif uses_load:
        run.report(MISSING_OPTION, f"{path}/load", f"{LOAD} is used but no load is given")
    _writes(run, action.set, f"{path}/set")
    _writes(run, action.otherwise, f"{path}/otherwise")


def _form(run: CheckRun, form: str, path: str) -> frozenset[str] | None:
    """The field keys of `form` when known; reports a form the app does not have."""
    if "." in form:
        return None  # another app's form: resolved at run time
    forms = run.ctx.forms
    if forms is not None and form not in forms:
        run.report(UNKNOWN_FORM, path, f"no form {form!r}")
        return None
    known = getattr(run.ctx, "form_fields", None)
    return None if known is None else known.get(form)


def _field(
    run: CheckRun, fields: frozenset[str] | None, form: str, name: str | None, path: str
) -> None:
    if name is not None and fields is not None and name not in fields:
        run.report(UNKNOWN_FIELD, path, f"form {form!r} has no field {name!r}")


def _writes(run: CheckRun, values: Mapping[str, str], path: str) -> None:
    catalog = run.ctx.catalog
    for name, text in values.items():
        if catalog is not None and name not in catalog:
            run.report(UNKNOWN_FIELD, f"{path}/{name}", f"no field {name!r}")
        _parse_only(run, text, f"{path}/{name}")


def _parse_only(run: CheckRun, text: str | None, path: str) -> None:
    if text is None:
        return
    run.texts[path] = text
    try:
        parse(text)
    except ExpressionError as err:
        run.problems.append(to_problem(err, path=path))


def form_fields_of(forms: Iterable[Any]) -> dict[str, frozenset[str]]:
    """`{form key: field keys}` of form specs (`FormSpec`), subform columns not included."""
    return {
        str(spec.key): frozenset(str(f.key) for f in getattr(spec, "fields", ())) for spec in forms
    }


__all__ = ["CheckRun", "check_assign_action", "form_fields_of"]

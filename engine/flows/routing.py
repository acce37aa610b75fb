"""The `match_rule` action: the first matching row of a rules form, copied onto the record.

Rules are few (tens), so every live row is read in rule order and matched in Python; the
matched row is kept in an instance variable so later actions (`pick_assignee`) can read its
details (e.g. required skills with levels) as `$vars.<into>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.errors import TransitionError
from engine.expr import evaluate, references
from engine.flows.actions import ActionContext, jsonable, record_values
from engine.flows.instances import FlowStore
from engine.flows.spec_assign import MatchRule
from engine.storage.form_records import FormRecordStore, StoredRecord

if TYPE_CHECKING:
    from engine.registry import FormDefinition

KEYWORD_SPLIT = re.compile(r"[,，;；]")
ID_TYPES = frozenset({"relation", "user", "department"})
SYSTEM_COLUMNS = frozenset({"id", "version", "deleted_at"})
UNKNOWN_FIELD = "flow.unknown-field"


def run_match_rule(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, MatchRule)
    opened = Opened(ctx)
    values = current_values(ctx, _exprs(path, action), opened)
    app, form = target(ctx, action.form)
    matched: StoredRecord | None = None
    for row in _rules(ctx, app, form, action, opened):
        if _matches(ctx, action, path, row.values, values):
            matched = row
            break
    rule = None if matched is None else {**jsonable(matched.values), "id": matched.id}
    remember(ctx, action.into, rule)
    copied = {field: _copied(rule, source) for field, source in action.copy_fields.items()}
    scope = {**values, "$rule": rule}
    changed = write_record(ctx, action.set, f"{path}/set", scope, opened, copied)
    return {
        "type": "match_rule",
        "form": form,
        "rule": None if rule is None else rule["id"],
        "changed": changed,
    }


def _rules(
    ctx: ActionContext, app: str, form: str, action: MatchRule, opened: Opened
) -> list[StoredRecord]:
    _definition, store = opened(app, form)
    main = store.layout.main
    query = sa.select(main.c.id).where(main.c.deleted_at.is_(None))
    if action.active_field is not None:
        query = query.where(column(main, action.active_field, form).is_(True))
    query = query.order_by(column(main, action.order_by, form).asc(), main.c.id.asc())
    return store.get_many(ids=[int(i) for i in ctx.uow.conn.execute(query).scalars()])


def _matches(
    ctx: ActionContext,
    action: MatchRule,
    path: str,
    rule: Mapping[str, Any],
    values: Mapping[str, Any],
) -> bool:
    for key in action.criteria:
        wanted = rule.get(key)
        if is_blank(wanted):
            continue  # an empty criterion matches anything
        have = evaluate(ctx.flow.expr(f"{path}/criteria/{key}"), values, now=ctx.now)
        if not (as_keys(wanted) & as_keys(have)):
            return False
    if action.keywords is not None:
        words = [w.strip() for w in KEYWORD_SPLIT.split(str(rule.get(action.keywords.field) or ""))]
        words = [w for w in words if w]
        if words:
            text = evaluate(ctx.flow.expr(f"{path}/keywords/text"), values, now=ctx.now)
            folded = str(text or "").casefold()
            if not any(w.casefold() in folded for w in words):
                return False
    return True


# --- shared with pick_assignee ----------------------------------------------------------------


class Opened:
    """Forms opened once per action (each open checks the definition registry)."""

    def __init__(self, ctx: ActionContext) -> None:
        self._ctx = ctx
        self._found: dict[tuple[str, str], tuple[FormDefinition, FormRecordStore]] = {}

    def __call__(self, app: str, form: str) -> tuple[FormDefinition, FormRecordStore]:
        if (app, form) not in self._found:
            self._found[(app, form)] = self._ctx.env.kit.open(self._ctx.uow, app, form)
        return self._found[(app, form)]


def current_values(ctx: ActionContext, exprs: Iterable[str], opened: Opened) -> dict[str, Any]:
    """The record's values as they are now (an earlier action of the node may have written),
    `$…` variables, and `relation.field` paths the expressions at `exprs` read (one hop)."""
    instance = ctx.instance
    record = ctx.record
    if instance.form is not None and instance.record_id is not None:
        record = opened(instance.app, instance.form)[1].get(record_id=instance.record_id)
    values = record_values(record, instance=instance, outcome=ctx.values.get("$outcome"))
    paths = {
        name
        for path in exprs
        if path in ctx.flow.expressions
        for name in references(ctx.flow.expr(path))
        if "." in name and not name.startswith("$")
    }
    ids = {
        p.split(".", 1)[0]: v
        for p in paths
        if isinstance(v := values.get(p.split(".", 1)[0]), int) and not isinstance(v, bool)
    }
    if ids and instance.form is not None:
        _definition, store = opened(instance.app, instance.form)
        found = store.related_values(names=paths, ids=ids)
        values.update({p: found.get(p) for p in paths})
    return values


def write_record(
    ctx: ActionContext,
    exprs: Mapping[str, str],
    base: str,
    values: Mapping[str, Any],
    opened: Opened,
    plain: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate `exprs` (record field → expression at `base/<field>`), add the `plain` values
    and write the record; what changed as `{field: [before, after]}`."""
    instance = ctx.instance
    if not (exprs or plain) or instance.form is None or instance.record_id is None:
        return {}
    definition, _store = opened(instance.app, instance.form)
    new = {
        key: _as_stored(
            definition.compiled.fields.get(key),
            evaluate(ctx.flow.expr(f"{base}/{key}"), values, now=ctx.now),
        )
        for key in exprs
    }
    new.update(plain or {})
    after = ctx.writer().update(instance.app, instance.form, instance.record_id, new, actor=None)
    return {
        key: [jsonable(values.get(key)), jsonable(after.values.get(key))]
        for key in new
        if values.get(key) != after.values.get(key)
    }


def _copied(rule: Mapping[str, Any] | None, source: str) -> Any:
    """A rule field's value, or the `column` values of its `subform` rows (None: no rule)."""
    if rule is None:
        return None
    subform, _, column = source.partition(".")
    value = rule.get(subform)
    if not column:
        return value
    rows = value if isinstance(value, list) else []
    found = [row.get(column) for row in rows if isinstance(row, Mapping)]
    return list(dict.fromkeys(v for v in found if v is not None))


def _as_stored(spec: Any, value: Any) -> Any:
    """An expression result as the field stores it: expressions give numbers as decimals and
    lists as tuples, while ids of relation/user/department fields are whole numbers."""
    if isinstance(value, tuple):
        return [_as_stored(spec, v) for v in value]
    kind = str(getattr(spec, "type", ""))
    if kind in ID_TYPES and isinstance(value, Decimal) and value == int(value):
        return int(value)
    return value


def remember(ctx: ActionContext, name: str, value: Any) -> None:
    """Keep `value` as the instance variable `name`: stored, and seen as `$vars.<name>` by the
    nodes that follow in this step (the run shares the instance's variables dict)."""
    variables = ctx.instance.variables
    variables[name] = jsonable(value)
    FlowStore(ctx.uow.conn).set_variables(ctx.instance.id, variables, ctx.now)


def column(table: sa.Table, name: str, form: str) -> sa.Column[Any]:
    """The stored column of field `name` (publish checks catch unknown names when the app's
    forms are known; this covers a form changed after the flow was published)."""
    if name not in table.c or name in SYSTEM_COLUMNS:
        raise TransitionError(f"form {form!r} has no stored field {name!r}", code=UNKNOWN_FIELD)
    return table.c[name]


def target(ctx: ActionContext, ref: str) -> tuple[str, str]:
    app, _, form = ref.rpartition(".")
    return (app or ctx.instance.app), form


def is_blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def as_keys(value: Any) -> set[str]:
    """Comparable keys of a value or list: ids and option keys as text (`3`, `3.0` → "3")."""
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return {key(v) for v in items if not is_blank(v)}


def key(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, Decimal | float) and value == int(value):
        value = int(value)
    return str(value)


def _exprs(path: str, action: MatchRule) -> list[str]:
    found = [f"{path}/criteria/{k}" for k in action.criteria]
    found += [f"{path}/set/{k}" for k in action.set]
    if action.keywords is not None:
        found.append(f"{path}/keywords/text")
    return found


__all__ = [
    "Opened",
    "as_keys",
    "column",
    "current_values",
    "is_blank",
    "key",
    "remember",
    "run_match_rule",
    "target",
    "write_record",
]

"""Automated actions of action nodes: set fields, create/update/delete records, notify, webhook.

Record writes go through the form engine's `RecordWriter` (source "flow"), so they are
validated like any write and fire record listeners — flow triggers included — again.
Each action returns a JSON summary of what it changed, for the instance's timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.errors import TransitionError
from engine.expr import evaluate
from engine.flows.compiler import CompiledFlow
from engine.flows.instances import InstanceRow
from engine.flows.spec import (
    ActionNode,
    AnswerLink,
    AssigneeRule,
    CreateRecord,
    DeleteRecord,
    MatchRule,
    Notify,
    PickAssignee,
    SetFields,
    UpdateRecord,
    Webhook,
)
from engine.labels import Label, label_text
from engine.storage.form_records import StoredRecord

if TYPE_CHECKING:
    from engine.flows.runtime_env import FlowEnvironment
    from engine.forms.record_writer import RecordWriter
    from engine.storage.uow import UnitOfWork

MAX_RECORDS_PER_ACTION = 1000
TOO_MANY = "flow.too-many-records"
NO_RECORD = "flow.no-record"


@dataclass(frozen=True, slots=True)
class ActionContext:
    uow: UnitOfWork
    env: FlowEnvironment
    instance: InstanceRow
    flow: CompiledFlow
    record: StoredRecord | None
    values: Mapping[str, Any]
    now: datetime
    depth: int

    def writer(self) -> RecordWriter:
        from engine.forms.record_writer import RecordWriter

        return RecordWriter(self.uow, self.env.kit, source="flow", depth=self.depth)

    def eval(self, path: str) -> Any:
        value = evaluate(self.flow.expr(path), self.values, now=self.now)
        # expressions compute numbers as Decimal; an id for a relation/user field must be an int
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        return value


def record_values(
    record: StoredRecord | None, *, instance: InstanceRow, outcome: str | None
) -> dict[str, Any]:
    """The names flow expressions see: the record's fields and system columns, and `$…`."""
    values: dict[str, Any] = {}
    if record is not None:
        values.update(record.values)
        values.update(
            id=record.id,
            created_at=record.created_at,
            created_by=record.created_by,
            updated_at=record.updated_at,
            updated_by=record.updated_by,
            owner=record.owner_id,
            version=record.version,
        )
    values.update(
        {
            "$initiator": instance.initiator_id,
            "$instance": instance.id,
            "$outcome": outcome,
            "$vars": dict(instance.variables),
        }
    )
    return values


def run_actions(ctx: ActionContext, node: ActionNode) -> list[dict[str, Any]]:
    """Run the node's actions in order; the summaries of what each did."""
    base = ctx.flow.paths[node.key]
    done: list[dict[str, Any]] = []
    for a, action in enumerate(node.actions):
        path = f"{base}/actions/{a}"
        done.append(_RUNNERS[type(action)](ctx, action, path))
    return done


def _set_fields(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, SetFields)
    instance = ctx.instance
    if instance.form is None or instance.record_id is None or ctx.record is None:
        raise TransitionError("set_fields needs the flow's record", code=NO_RECORD)
    values = {key: ctx.eval(f"{path}/values/{key}") for key in action.values}
    before = ctx.record.values
    after = ctx.writer().update(instance.app, instance.form, instance.record_id, values, actor=None)
    changed = {
        key: [jsonable(before.get(key)), jsonable(after.values.get(key))]
        for key in values
        if before.get(key) != after.values.get(key)
    }
    return {"type": "set_fields", "changed": changed}


def _create_record(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, CreateRecord)
    app, form = _target(ctx, action.form)
    values = {key: ctx.eval(f"{path}/values/{key}") for key in action.values}
    writer = ctx.writer()
    created = writer.create(app, form, values, actor=None)
    instance = ctx.instance
    if action.link_field is not None and instance.form and instance.record_id is not None:
        link = {action.link_field: created.id}
        writer.update(instance.app, instance.form, instance.record_id, link, actor=None)
    return {"type": "create_record", "form": form, "id": created.id}


def _update_record(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, UpdateRecord)
    app, form = _target(ctx, action.form)
    ids = _matching(ctx, app, form, f"{path}/where")
    values = {key: ctx.eval(f"{path}/values/{key}") for key in action.values}
    writer = ctx.writer()
    for record_id in ids:
        writer.update(app, form, record_id, values, actor=None)
    return {"type": "update_record", "form": form, "ids": ids}


def _delete_record(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, DeleteRecord)
    app, form = _target(ctx, action.form)
    ids = _matching(ctx, app, form, f"{path}/where")
    writer = ctx.writer()
    for record_id in ids:
        writer.delete(app, form, record_id, actor=None)
    return {"type": "delete_record", "form": form, "ids": ids}


def _matching(ctx: ActionContext, app: str, form: str, path: str) -> list[int]:
    """Ids of `form`'s live records meeting the `where` at `path` (`$record.x` is the flow's)."""
    from engine.expr import compile_filter

    _definition, store = ctx.env.kit.open(ctx.uow, app, form)
    main = store.layout.main
    columns: dict[str, Any] = {name: col for name, col in main.c.items()}
    for key, value in ctx.values.items():
        if not key.startswith("$") and isinstance(value, str | int | float | Decimal | bool):
            columns[f"$record.{key}"] = sa.literal(value)
    condition = compile_filter(
        ctx.flow.expr(path), columns, dialect=ctx.uow.conn.dialect.name, now=ctx.now
    )
    query = sa.select(main.c.id).where(condition, main.c.deleted_at.is_(None))
    ids = [int(i) for i in ctx.uow.conn.execute(query.limit(MAX_RECORDS_PER_ACTION + 1)).scalars()]
    if len(ids) > MAX_RECORDS_PER_ACTION:
        raise TransitionError(
            f"the action would change more than {MAX_RECORDS_PER_ACTION} records", code=TOO_MANY
        )
    return ids


def _notify(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, Notify)
    from engine.outbox import notify

    user_ids = sorted(recipients(ctx, action.to))
    subject = _text(action.subject) or label_text(ctx.flow.spec.label)
    channels = [c for c in action.channels if c in ("in_app", "email")]
    if user_ids:
        notify(
            ctx.uow.conn,
            user_ids=user_ids,
            subject=_fill(subject, ctx.values),
            body=_fill(_text(action.body) or "", ctx.values),
            link=_link(ctx),
            channels=channels,
            key=f"flow:{ctx.instance.id}:{path}:{ctx.now.isoformat()}",  # a loop notifies again
        )
    return {"type": "notify", "users": user_ids}


def _webhook(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    assert isinstance(action, Webhook)
    from engine.outbox import send_webhook

    instance = ctx.instance
    record = {k: jsonable(v) for k, v in ctx.values.items() if not k.startswith("$")}
    payload = {
        **action.payload,
        "flow": instance.flow,
        "instance": instance.id,
        "form": instance.form,
        "record": record,
    }
    send_webhook(
        ctx.uow.conn,
        url=action.url,
        method=action.method,
        payload=payload,
        secret_name=action.secret,
        key=f"flow:{instance.id}:{path}:{ctx.now.isoformat()}",
        max_attempts=action.retries + 1,
    )
    return {"type": "webhook", "url": action.url}


def recipients(ctx: ActionContext, rules: Iterable[AssigneeRule]) -> set[int]:
    """Users named by notification rules, resolved exactly as task assignees are (every rule
    type: user, role, department, head N levels up, field, initiator, expression, skills …)."""
    from engine.flows.assignees import AssignContext, resolve_rule

    instance = ctx.instance
    assign = AssignContext(
        app=instance.app,
        scope=f"{instance.app}/{ctx.flow.spec.key}/notify",
        record={k: v for k, v in ctx.values.items() if not k.startswith("$")},
        initiator_id=instance.initiator_id,
        now=ctx.now,
    )
    found: set[int] = set()
    for index, rule in enumerate(rules):
        found.update(resolve_rule(ctx.uow.conn, rule, assign, index=index).user_ids)
    return found


def _target(ctx: ActionContext, ref: str) -> tuple[str, str]:
    app, _, form = ref.rpartition(".")
    return (app or ctx.instance.app), form


def _text(label: Label | None) -> str | None:
    return None if label is None else label_text(label)


def _fill(template: str, values: Mapping[str, Any]) -> str:
    """`{field}` placeholders replaced by the record's values (unknown ones left as written)."""
    out = template
    for key, value in values.items():
        if not key.startswith("$") and "{" + key + "}" in out:
            out = out.replace("{" + key + "}", "" if value is None else str(jsonable(value)))
    return out


def _link(ctx: ActionContext) -> str | None:
    instance = ctx.instance
    if instance.form is None or instance.record_id is None:
        return None
    return f"/apps/{instance.app}/forms/{instance.form}/records/{instance.record_id}"


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it (dates as ISO text, decimals as numbers)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def _match_rule(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    from engine.flows.routing import run_match_rule  # imports this module

    return run_match_rule(ctx, action, path)


def _pick_assignee(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    from engine.flows.assign_rank import run_pick_assignee  # imports this module

    return run_pick_assignee(ctx, action, path)


def _answer_link(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    from engine.public.answer_links import run_answer_link  # imports this module

    return run_answer_link(ctx, action, path)


_RUNNERS: dict[type, Callable[[ActionContext, Any, str], dict[str, Any]]] = {
    SetFields: _set_fields,
    CreateRecord: _create_record,
    UpdateRecord: _update_record,
    DeleteRecord: _delete_record,
    Notify: _notify,
    Webhook: _webhook,
    AnswerLink: _answer_link,
    MatchRule: _match_rule,
    PickAssignee: _pick_assignee,
}

__all__ = ["ActionContext", "jsonable", "record_values", "recipients", "run_actions"]

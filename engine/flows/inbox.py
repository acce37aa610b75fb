"""The task inbox: my open tasks, my claim pool, what was CC'd to me and what I did; task detail
with the record masked by the actor's form access and the node's field permissions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from engine.errors import PermissionDenied
from engine.flows.tasks_fields import field_levels
from engine.flows.tasks_ops import NOT_YOURS, Locked, can_see
from engine.flows.tasks_store import Task, get_group, get_task, group_tasks, task_actions
from engine.forms.record_json import record_to_json
from engine.forms.service import RecordService
from engine.identity.actor import Actor
from engine.storage.tables_assign import flow_task_candidates, flow_task_groups, flow_tasks
from engine.storage.uow import UnitOfWork

Box = Literal["mine", "pool", "cc", "done"]
BOXES: tuple[Box, ...] = ("mine", "pool", "cc", "done")
MAX_PAGE = 200


def box_filter(box: Box, user_id: int) -> sa.ColumnElement[bool]:
    """The condition selecting the tasks of `box` for `user_id`."""
    t = flow_tasks.c
    if box == "mine":
        return sa.and_(t.assignee_id == user_id, t.status == "open", t.kind != "cc")
    if box == "pool":
        mine = sa.select(flow_task_candidates.c.task_id).where(
            flow_task_candidates.c.user_id == user_id
        )
        return sa.and_(t.is_pool, t.assignee_id.is_(None), t.status == "open", t.id.in_(mine))
    if box == "cc":
        return sa.and_(t.assignee_id == user_id, t.kind == "cc")
    return sa.and_(t.completed_by == user_id, t.status == "done")


def list_tasks(
    conn: sa.Connection, *, user_id: int, box: Box, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """A page of the box, newest first; `before` is the last id of the previous page."""
    query = (
        sa.select(flow_tasks, *_GROUP_COLUMNS)
        .join(flow_task_groups, flow_task_groups.c.id == flow_tasks.c.group_id)
        .where(box_filter(box, user_id))
        .order_by(flow_tasks.c.id.desc())
        .limit(max(1, min(limit, MAX_PAGE)))
    )
    if before is not None:
        query = query.where(flow_tasks.c.id < before)
    return [_item(dict(row._mapping)) for row in conn.execute(query)]


def count_boxes(conn: sa.Connection, *, user_id: int) -> dict[str, int]:
    """How many tasks each box holds (`cc_unread`: CC'd and not opened yet)."""
    counts: dict[str, int] = {
        box: int(
            conn.execute(
                sa.select(sa.func.count()).select_from(flow_tasks).where(box_filter(box, user_id))
            ).scalar_one()
        )
        for box in BOXES
    }
    unread = sa.and_(box_filter("cc", user_id), flow_tasks.c.read_at.is_(None))
    query = sa.select(sa.func.count()).select_from(flow_tasks).where(unread)
    counts["cc_unread"] = int(conn.execute(query).scalar_one())
    return counts


def task_detail(
    uow: UnitOfWork, *, records: RecordService, task_id: int, actor: Actor, now: datetime
) -> dict[str, Any]:
    """The task, its node, the other tasks of the node, its log, and the record as this task
    shows it. Opening a CC task marks it read.

    Raises:
        PermissionDenied: `task.not-yours` for someone the task does not concern.
    """
    from engine.forms.record_access import check_lookups, form_access

    task = get_task(uow.conn, task_id)
    group = get_group(uow.conn, task.group_id)
    if not can_see(uow.conn, Locked(task, group), actor):
        raise PermissionDenied(f"task {task_id} is not yours", code=NOT_YOURS)
    if task.kind == "cc" and task.read_at is None and task.assignee_id == actor.user_id:
        uow.conn.execute(flow_tasks.update().where(flow_tasks.c.id == task_id).values(read_at=now))
        task = get_task(uow.conn, task_id)
    out = _task_json(task)
    node = group.node
    out["node"] = {
        "key": node.key,
        "label": node.label,
        "kind": node.kind,
        "mode": node.mode,
        "operations": list(node.operations),
        "field_permissions": dict(node.field_permissions),
    }
    out.update(flow=group.flow, app=group.app, form=group.form, record_id=group.record_id)
    out["node_tasks"] = [_peer(t) for t in group_tasks(uow.conn, group.id)]
    out["actions"] = [_action(a) for a in task_actions(uow.conn, task_id=task_id)]
    out["record"] = out["fields"] = None
    if group.form is not None and group.record_id is not None:
        definition = records.definition(app=group.app, form=group.form)
        record = records.writer(uow).get(group.app, group.form, group.record_id)
        access = form_access(uow=uow, who=actor, app=group.app, form=group.form)
        layout = records.layout(definition)
        [record], access = check_lookups(
            uow.conn, access, layout, [record], who=actor, now=uow.clock()
        )
        levels = field_levels(access, node, record.values)
        shown = access.narrow(node.field_permissions)
        out["record"] = record_to_json(definition, record, access=shown)
        out["fields"] = {k: v for k, v in levels.items() if v != "hidden"}
    return out


def _task_json(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Task.__slots__:
        value = getattr(task, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _peer(task: Task) -> dict[str, Any]:
    keys = ("id", "assignee_id", "status", "outcome", "seq", "parent_task_id", "signer_position")
    return {key: getattr(task, key) for key in keys}


def _action(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "at", "actor_id", "action", "detail")
    return {k: row[k].isoformat() if isinstance(row[k], datetime) else row[k] for k in keys}


def _item(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
    out.pop("node", None)
    return out


_GROUP_COLUMNS = (
    flow_task_groups.c.app,
    flow_task_groups.c.flow,
    flow_task_groups.c.node_key,
    flow_task_groups.c.form,
    flow_task_groups.c.record_id,
    flow_task_groups.c.initiator_id,
)

__all__ = ["BOXES", "MAX_PAGE", "Box", "box_filter", "count_boxes", "list_tasks", "task_detail"]

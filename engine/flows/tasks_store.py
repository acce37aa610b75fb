"""Rows of the task tables and the SQL the task service runs on them.

Writes to a task check its `version` (optimistic lock): a second completion finds the version
moved on and is refused. Operations on one node take the group row's lock first, so that the
decision "is the node complete?" sees every task of the node as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError
from engine.flows.spec import UserTaskNode
from engine.storage.tables_assign import (
    flow_task_actions,
    flow_task_candidates,
    flow_task_groups,
    flow_tasks,
)

ALREADY_DONE = "task.already-done"
TASK_NOT_FOUND = "task.not-found"


@dataclass(frozen=True, slots=True)
class TaskGroup:
    """One opening of a user-task node for one token, with the node's definition."""

    id: int
    instance_id: int
    token_id: int
    app: str
    flow: str
    flow_version: int
    node_key: str
    form: str | None
    record_id: int | None
    initiator_id: int | None
    node: UserTaskNode
    status: str
    outcome: str | None
    version: int


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    group_id: int
    instance_id: int
    kind: str
    assignee_id: int | None
    owner_id: int | None
    is_pool: bool
    seq: int
    parent_task_id: int | None
    signer_position: str | None
    status: str
    outcome: str | None
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: int | None
    read_at: datetime | None
    version: int


def insert_group(conn: sa.Connection, **values: Any) -> int:
    node: UserTaskNode = values.pop("node")
    row = {**values, "node": node.model_dump(mode="json", by_alias=True, exclude_none=True)}
    statement = flow_task_groups.insert().values(status="open", **row)
    return int(conn.execute(statement.returning(flow_task_groups.c.id)).scalar_one())


def insert_task(conn: sa.Connection, *, candidates: Iterable[int] = (), **values: Any) -> int:
    statement = flow_tasks.insert().values(**values).returning(flow_tasks.c.id)
    task_id = int(conn.execute(statement).scalar_one())
    rows = [{"task_id": task_id, "user_id": user} for user in dict.fromkeys(candidates)]
    if rows:
        conn.execute(flow_task_candidates.insert(), rows)
    return task_id


def get_task(conn: sa.Connection, task_id: int) -> Task:
    row = conn.execute(sa.select(flow_tasks).where(flow_tasks.c.id == task_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"task {task_id} does not exist", code=TASK_NOT_FOUND)
    return Task(**row._mapping)


def get_group(conn: sa.Connection, group_id: int, *, lock: bool = False) -> TaskGroup:
    """The group; with `lock`, its row is locked for the rest of the transaction (version bump:
    portable, and SQLite has no row locks)."""
    if lock:
        conn.execute(
            flow_task_groups.update()
            .where(flow_task_groups.c.id == group_id)
            .values(version=flow_task_groups.c.version + 1)
        )
    query = sa.select(flow_task_groups).where(flow_task_groups.c.id == group_id)
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"task group {group_id} does not exist", code=TASK_NOT_FOUND)
    return _group(dict(row._mapping))


def lock_task_and_group(conn: sa.Connection, task_id: int) -> tuple[Task, TaskGroup]:
    """The task and its group, the group row locked first (one UPDATE, one SELECT)."""
    owner = sa.select(flow_tasks.c.group_id).where(flow_tasks.c.id == task_id).scalar_subquery()
    conn.execute(
        flow_task_groups.update()
        .where(flow_task_groups.c.id == owner)
        .values(version=flow_task_groups.c.version + 1)
    )
    labelled = [c.label(f"g_{c.name}") for c in flow_task_groups.c]
    query = (
        sa.select(flow_tasks, *labelled)
        .join(flow_task_groups, flow_task_groups.c.id == flow_tasks.c.group_id)
        .where(flow_tasks.c.id == task_id)
    )
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"task {task_id} does not exist", code=TASK_NOT_FOUND)
    values = dict(row._mapping)
    group = {c.name: values.pop(f"g_{c.name}") for c in flow_task_groups.c}
    return Task(**values), _group(group)


def group_tasks(conn: sa.Connection, group_id: int) -> list[Task]:
    query = sa.select(flow_tasks).where(flow_tasks.c.group_id == group_id).order_by(flow_tasks.c.id)
    return [Task(**row._mapping) for row in conn.execute(query)]


def open_groups(
    conn: sa.Connection, *, token_id: int | None = None, instance_id: int | None = None
) -> list[TaskGroup]:
    query = sa.select(flow_task_groups).where(flow_task_groups.c.status == "open")
    if token_id is not None:
        query = query.where(flow_task_groups.c.token_id == token_id)
    if instance_id is not None:
        query = query.where(flow_task_groups.c.instance_id == instance_id)
    return [
        _group(dict(row._mapping)) for row in conn.execute(query.order_by(flow_task_groups.c.id))
    ]


def instance_groups(conn: sa.Connection, instance_id: int) -> list[TaskGroup]:
    query = (
        sa.select(flow_task_groups)
        .where(flow_task_groups.c.instance_id == instance_id)
        .order_by(flow_task_groups.c.id)
    )
    return [_group(dict(row._mapping)) for row in conn.execute(query)]


def update_task(conn: sa.Connection, task: Task, **values: Any) -> None:
    """Change `task` if nobody changed it since it was read.

    Raises:
        ConflictError: `task.already-done` when its version moved on.
    """
    result = conn.execute(
        flow_tasks.update()
        .where(flow_tasks.c.id == task.id, flow_tasks.c.version == task.version)
        .values(**values, version=flow_tasks.c.version + 1)
    )
    if result.rowcount != 1:
        raise ConflictError(f"task {task.id} was already handled", code=ALREADY_DONE)


def close_group(
    conn: sa.Connection, group_id: int, *, status: str, outcome: str | None, now: datetime
) -> None:
    conn.execute(
        flow_task_groups.update()
        .where(flow_task_groups.c.id == group_id)
        .values(status=status, outcome=outcome, closed_at=now)
    )


def cancel_tasks(conn: sa.Connection, group_id: int, *, now: datetime) -> list[int]:
    """Cancel every task of the group still open or waiting; returns their ids."""
    where = (flow_tasks.c.group_id == group_id, flow_tasks.c.status.in_(("open", "waiting")))
    statement = (
        flow_tasks.update()
        .where(*where)
        .values(status="cancelled", completed_at=now, version=flow_tasks.c.version + 1)
        .returning(flow_tasks.c.id)
    )
    return sorted(conn.execute(statement).scalars())


def candidates_of(conn: sa.Connection, task_id: int) -> list[int]:
    query = sa.select(flow_task_candidates.c.user_id).where(
        flow_task_candidates.c.task_id == task_id
    )
    return sorted(conn.execute(query).scalars())


def log_action(
    conn: sa.Connection,
    *,
    instance_id: int,
    action: str,
    at: datetime,
    actor_id: int | None,
    task_id: int | None = None,
    group_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        flow_task_actions.insert().values(
            instance_id=instance_id,
            task_id=task_id,
            group_id=group_id,
            at=at,
            actor_id=actor_id,
            action=action,
            detail=dict(detail or {}),
        )
    )


def task_actions(conn: sa.Connection, *, task_id: int) -> list[dict[str, Any]]:
    query = (
        sa.select(flow_task_actions)
        .where(flow_task_actions.c.task_id == task_id)
        .order_by(flow_task_actions.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def _group(values: dict[str, Any]) -> TaskGroup:
    values["node"] = UserTaskNode.model_validate(values["node"])
    values.pop("created_at", None)
    values.pop("closed_at", None)
    return TaskGroup(**values)


__all__ = [
    "ALREADY_DONE",
    "TASK_NOT_FOUND",
    "Task",
    "TaskGroup",
    "cancel_tasks",
    "candidates_of",
    "close_group",
    "get_group",
    "get_task",
    "group_tasks",
    "insert_group",
    "insert_task",
    "instance_groups",
    "lock_task_and_group",
    "log_action",
    "open_groups",
    "task_actions",
    "update_task",
]

"""User tasks: opening a node's tasks, cancelling them, and settling a node when its tasks are done.

The flow runtime calls `open_node_tasks` when a token reaches a user-task node and
`cancel_node_tasks` when the token goes away (withdraw, terminate, a join that no longer waits).
The task service calls `settle_group` after every task operation; once the node's mode says
it is complete, the token is resumed through the runtime's `resume_token`, in the same unit of
work. docs/tasks.md describes the behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from engine.errors import TransitionError
from engine.flows.assignees import AssignContext, Assignment, resolve_rule
from engine.flows.refs import InstanceRef, TaskOpening, TaskOutcome
from engine.flows.spec import AssigneeRule, UserTaskNode
from engine.flows.tasks_effects import (
    cancel_timeout,
    notify_assigned,
    schedule_timeout,
)
from engine.flows.tasks_modes import decide, next_in_sequence
from engine.flows.tasks_store import (
    Task,
    TaskGroup,
    cancel_tasks,
    close_group,
    get_group,
    group_tasks,
    insert_group,
    insert_task,
    log_action,
    open_groups,
    update_task,
)
from engine.identity.actor import ADMIN_ROLE
from engine.storage.tables import roles, user_roles, users

if TYPE_CHECKING:
    from engine.storage.form_records import StoredRecord
    from engine.storage.uow import UnitOfWork

log = logging.getLogger(__name__)

NO_ASSIGNEE = "task.no-assignee"


class ResumeToken(Protocol):
    """The runtime's `engine.flows.runtime.resume_token` (injected so tests and the benchmark
    can run the task service alone)."""

    def __call__(
        self,
        uow: UnitOfWork,
        *,
        token_id: int,
        outcome: TaskOutcome,
        actor_id: int | None,
        now: datetime,
        goto: str | None = None,
    ) -> None: ...


def runtime_resume(
    uow: UnitOfWork,
    *,
    token_id: int,
    outcome: TaskOutcome,
    actor_id: int | None,
    now: datetime,
    goto: str | None = None,
) -> None:
    """Resume the token through the flow runtime (imported late: the runtime imports us)."""
    from engine.flows.runtime import resume_token

    resume_token(uow, token_id=token_id, outcome=outcome, actor_id=actor_id, now=now, goto=goto)


def open_node_tasks(
    uow: UnitOfWork,
    *,
    instance: InstanceRef,
    token_id: int,
    node: UserTaskNode,
    record: StoredRecord | None,
    now: datetime,
) -> TaskOpening:
    """Create the tasks of `node` for `token_id`, in the caller's unit of work.

    CC nodes create their (read-only) tasks and report `skipped` so the token moves on at once;
    so does a node nobody matches whose `if_empty` is `skip`.

    Raises:
        TransitionError: `task.no-assignee` when nobody matches and `if_empty` is `fail` (or its
            fallback rule finds nobody either); `task.bad-assignee-rule` for a rule that cannot
            be evaluated.
    """
    conn = uow.conn
    ctx = AssignContext(
        app=instance.app,
        scope=f"{instance.app}/{instance.flow}/{node.key}",
        record=dict(record.values) if record is not None else {},
        initiator_id=instance.initiator_id,
        now=now,
    )
    assignment = _assign(conn, node.assignees, ctx)
    if not assignment.user_ids:
        fallback = _if_empty(conn, node, ctx)
        if fallback is None:
            log_action(
                conn,
                instance_id=instance.id,
                action="skipped",
                at=now,
                actor_id=None,
                detail={"node": node.key, "reason": "no assignee"},
            )
            return TaskOpening((), skipped=True)
        assignment = fallback
    group_id = insert_group(
        conn,
        instance_id=instance.id,
        token_id=token_id,
        app=instance.app,
        flow=instance.flow,
        flow_version=instance.version,
        node_key=node.key,
        form=instance.form,
        record_id=instance.record_id,
        initiator_id=instance.initiator_id,
        node=node,
        created_at=now,
    )
    task_ids = _create_tasks(conn, instance, token_id, group_id, node, assignment, now)
    if node.kind == "cc":
        close_group(conn, group_id, status="done", outcome="done", now=now)
        return TaskOpening(task_ids, skipped=True)
    return TaskOpening(task_ids)


def cancel_node_tasks(uow: UnitOfWork, *, token_id: int, reason: str) -> None:
    """Cancel the open tasks of the token's node (its timeouts too); the token is not resumed."""
    now = uow.clock()
    for group in open_groups(uow.conn, token_id=token_id):
        get_group(uow.conn, group.id, lock=True)
        cancel_group(uow.conn, group, reason=reason, now=now, actor_id=None)


def cancel_group(
    conn: sa.Connection, group: TaskGroup, *, reason: str, now: datetime, actor_id: int | None
) -> None:
    for task_id in cancel_tasks(conn, group.id, now=now):
        cancel_timeout(conn, group, task_id)
    close_group(conn, group.id, status="cancelled", outcome=None, now=now)
    log_action(
        conn,
        instance_id=group.instance_id,
        group_id=group.id,
        action="cancelled",
        at=now,
        actor_id=actor_id,
        detail={"reason": reason, "node": group.node_key},
    )


def settle_group(
    uow: UnitOfWork,
    group_id: int,
    *,
    actor_id: int | None,
    now: datetime,
    resume: ResumeToken,
    group: TaskGroup | None = None,
    tasks: list[Task] | None = None,
) -> TaskOutcome | None:
    """After a task changed: open the next sequential task, or close the node and resume its
    token when the mode says it is complete. The caller holds the group's lock (and may pass
    the group and its current tasks, read under that lock)."""
    conn = uow.conn
    group = group if group is not None else get_group(conn, group_id)
    if group.status != "open":
        return None
    tasks = tasks if tasks is not None else group_tasks(conn, group_id)
    outcome = decide(
        mode=group.node.mode, ratio=group.node.ratio, kind=group.node.kind, tasks=tasks
    )
    if outcome is None:
        following = next_in_sequence(tasks) if group.node.mode == "sequential" else None
        if following is not None:
            update_task(conn, following, status="open")
            schedule_timeout(conn, group, following.id, now=now)
            notify_assigned(conn, [following.assignee_id], group, pool=False)
        return None
    finish_group(
        uow, group, outcome=outcome, actor_id=actor_id, now=now, resume=resume, tasks=tasks
    )
    return outcome


def finish_group(
    uow: UnitOfWork,
    group: TaskGroup,
    *,
    outcome: TaskOutcome,
    actor_id: int | None,
    now: datetime,
    resume: ResumeToken,
    goto: str | None = None,
    tasks: list[Task] | None = None,
) -> None:
    """Close the node with `outcome`, cancel what is left of it, and resume its token.
    `tasks`, read under the group's lock, spare the cancel when none of them is left open."""
    conn = uow.conn
    left = tasks is None or any(t.status in ("open", "waiting") for t in tasks)
    for task_id in cancel_tasks(conn, group.id, now=now) if left else ():
        cancel_timeout(conn, group, task_id)
    close_group(conn, group.id, status="done", outcome=outcome, now=now)
    detail: dict[str, Any] = {"node": group.node_key, "outcome": outcome}
    if goto is not None:
        detail["goto"] = goto
    log_action(
        conn,
        instance_id=group.instance_id,
        group_id=group.id,
        action="node-completed",
        at=now,
        actor_id=actor_id,
        detail=detail,
    )
    resume(uow, token_id=group.token_id, outcome=outcome, actor_id=actor_id, now=now, goto=goto)


# --- assignment --------------------------------------------------------------------------------


def _assign(conn: sa.Connection, rules: Iterable[AssigneeRule], ctx: AssignContext) -> Assignment:
    """Every rule's users, in rule order; a node with a pool rule opens one pool task."""
    found: list[int] = []
    pool = False
    for index, rule in enumerate(rules):
        assignment = resolve_rule(conn, rule, ctx, index=index)
        found += assignment.user_ids
        pool = pool or assignment.pool
    return Assignment(tuple(dict.fromkeys(found)), pool=pool)


def _if_empty(conn: sa.Connection, node: UserTaskNode, ctx: AssignContext) -> Assignment | None:
    rule = node.if_empty
    if rule == "skip":
        return None
    if rule == "admin":
        found = Assignment(tuple(administrators(conn)))
    elif rule == "fail":
        found = Assignment(())
    else:
        found = resolve_rule(conn, rule, ctx, index=len(node.assignees))
    if not found.user_ids:
        raise TransitionError(f"nobody can take the tasks of node {node.key!r}", code=NO_ASSIGNEE)
    return found


def administrators(conn: sa.Connection) -> list[int]:
    """Active users holding the global admin role."""
    query = (
        sa.select(users.c.id)
        .join(user_roles, user_roles.c.user_id == users.c.id)
        .join(roles, roles.c.id == user_roles.c.role_id)
        .where(roles.c.key == ADMIN_ROLE, roles.c.app.is_(None), users.c.status == "active")
        .order_by(users.c.id)
    )
    return list(conn.execute(query).scalars())


def _create_tasks(
    conn: sa.Connection,
    instance: InstanceRef,
    token_id: int,
    group_id: int,
    node: UserTaskNode,
    assignment: Assignment,
    now: datetime,
) -> tuple[int, ...]:
    group = TaskGroup(
        id=group_id,
        instance_id=instance.id,
        token_id=token_id,
        app=instance.app,
        flow=instance.flow,
        flow_version=instance.version,
        node_key=node.key,
        form=instance.form,
        record_id=instance.record_id,
        initiator_id=instance.initiator_id,
        node=node,
        status="open",
        outcome=None,
        version=1,
    )
    common: dict[str, Any] = {
        "group_id": group_id,
        "instance_id": instance.id,
        "kind": node.kind,
        "created_at": now,
    }
    if assignment.pool and node.kind != "cc":
        task_id = insert_task(
            conn,
            **common,
            assignee_id=None,
            is_pool=True,
            status="open",
            candidates=assignment.user_ids,
        )
        _opened(conn, group, task_id, None, now)
        # an unclaimed pool task times out like any other (escalate: to a dispatcher)
        schedule_timeout(conn, group, task_id, now=now)
        notify_assigned(conn, assignment.user_ids, group, pool=True)
        return (task_id,)
    ids = []
    for seq, user in enumerate(assignment.user_ids):
        waiting = node.mode == "sequential" and seq > 0 and node.kind != "cc"
        status = "waiting" if waiting else "open"
        task_id = insert_task(conn, **common, assignee_id=user, seq=seq, status=status)
        ids.append(task_id)
        _opened(conn, group, task_id, user, now)
        if status == "open" and node.kind != "cc":
            schedule_timeout(conn, group, task_id, now=now)
    notified = assignment.user_ids if node.mode != "sequential" else assignment.user_ids[:1]
    notify_assigned(conn, notified, group, pool=False)
    return tuple(ids)


def _opened(
    conn: sa.Connection, group: TaskGroup, task_id: int, user: int | None, now: datetime
) -> None:
    log_action(
        conn,
        instance_id=group.instance_id,
        group_id=group.id,
        task_id=task_id,
        action="opened",
        at=now,
        actor_id=None,
        detail={"node": group.node_key, "assignee_id": user},
    )


__all__ = [
    "NO_ASSIGNEE",
    "ResumeToken",
    "administrators",
    "cancel_group",
    "cancel_node_tasks",
    "finish_group",
    "open_node_tasks",
    "runtime_resume",
    "settle_group",
]

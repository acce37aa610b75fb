"""Task operations inside a caller's unit of work: the steps the task service, batch approve and
the timeout jobs share.

Every operation locks the task's node (group row) first, re-reads the task, checks it is open
and the actor's, changes it under its version (optimistic lock), logs the action and settles
the node. `actor_id` None is the system (timeouts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.errors import (
    ConflictError,
    FieldError,
    PermissionDenied,
    SubmissionError,
    TransitionError,
)
from engine.flows.refs import TaskOutcome
from engine.flows.spec import FlowSpec
from engine.flows.tasks import ResumeToken, finish_group, settle_group
from engine.flows.tasks_effects import cancel_timeout, notify_users, schedule_timeout
from engine.flows.tasks_modes import APPROVALS
from engine.flows.tasks_store import (
    ALREADY_DONE,
    Task,
    TaskGroup,
    candidates_of,
    group_tasks,
    instance_groups,
    lock_task_and_group,
    log_action,
    update_task,
)
from engine.identity.actor import Actor
from engine.storage.tables import stored_files, users

if TYPE_CHECKING:
    from engine.storage.uow import UnitOfWork

NOT_YOURS = "task.not-yours"
NOT_OPEN = "task.not-open"
NOT_ALLOWED = "task.operation-not-allowed"
BAD_TARGET = "task.bad-target"
BAD_USER = "task.bad-user"
BAD_COMMENT = "task.bad-comment"
UNKNOWN_FILE = "task.unknown-file"
MAX_COMMENT = 20_000

# Operations a node may restrict through `operations`; approving/completing is always allowed.
RESTRICTABLE = ("reject", "return", "transfer", "add_signer", "delegate", "withdraw", "comment")


@dataclass(frozen=True, slots=True)
class Locked:
    """A task read under its node's lock, with the node."""

    task: Task
    group: TaskGroup


@dataclass(frozen=True, slots=True)
class OpContext:
    uow: UnitOfWork
    actor_id: int | None
    now: datetime
    resume: ResumeToken


def lock_task(ctx: OpContext, task_id: int) -> Locked:
    """The task and its node, with the node locked for the rest of the transaction."""
    task, group = lock_task_and_group(ctx.uow.conn, task_id)
    return Locked(task, group)


def require_open_and_mine(ctx: OpContext, locked: Locked, *, operation: str) -> None:
    """Refuse unless the task is open, the actor's (the system may act on any) and the node
    allows `operation`."""
    task, node = locked.task, locked.group.node
    if task.status in ("done", "cancelled"):
        raise ConflictError(f"task {task.id} was already handled", code=ALREADY_DONE)
    if task.status != "open":
        raise TransitionError(f"task {task.id} is not open yet", code=NOT_OPEN)
    if ctx.actor_id is not None and task.assignee_id != ctx.actor_id:
        raise PermissionDenied(f"task {task.id} is not yours", code=NOT_YOURS)
    if node.kind == "cc" or (
        operation in RESTRICTABLE and node.operations and operation not in node.operations
    ):
        raise TransitionError(f"{operation} is not allowed at step {node.key!r}", code=NOT_ALLOWED)


def decide_task(
    ctx: OpContext,
    locked: Locked,
    *,
    approve: bool,
    detail: Mapping[str, Any] | None = None,
    write: Callable[[], Mapping[str, Any]] | None = None,
) -> TaskOutcome | None:
    """Approve/complete or reject the task, then settle its node.

    A delegated task handled by its delegate goes back to its owner instead (the owner
    decides). `write` stores the submitted values first and returns what changed.
    """
    conn, task, group = ctx.uow.conn, locked.task, locked.group
    changed = dict(write()) if write is not None else {}
    info = {**(detail or {}), **({"changed": sorted(changed)} if changed else {})}
    if task.owner_id is not None and ctx.actor_id == task.assignee_id:
        update_task(conn, task, assignee_id=task.owner_id, owner_id=None)
        info["recommendation"] = "approve" if approve else "reject"
        _log(ctx, locked, "delegation-resolved", info)
        return None
    kind = group.node.kind
    outcome = ("done" if kind in ("fill", "handle") else "approved") if approve else "rejected"
    update_task(
        conn, task, status="done", outcome=outcome, completed_at=ctx.now, completed_by=ctx.actor_id
    )
    cancel_timeout(conn, group, task.id)
    _log(ctx, locked, outcome if approve else "rejected", info)
    tasks = _after_decision(ctx, locked, approved=approve)
    return settle_group(
        ctx.uow,
        group.id,
        actor_id=ctx.actor_id,
        now=ctx.now,
        resume=ctx.resume,
        group=group,
        tasks=tasks,
    )


def _after_decision(ctx: OpContext, locked: Locked, *, approved: bool) -> list[Task] | None:
    """Signers: a task waiting on its before-signers reopens once they all approved; signers
    added after a task open once it is approved. Returns the node's tasks when nothing
    changed them (else None: settling reads them again)."""
    conn, task = ctx.uow.conn, locked.task
    tasks = group_tasks(conn, locked.group.id)
    if not any(t.parent_task_id is not None for t in tasks):
        return tasks
    if task.parent_task_id is not None and task.signer_position == "before" and approved:
        parent = next(t for t in tasks if t.id == task.parent_task_id)
        before = [
            t for t in tasks if t.parent_task_id == parent.id and t.signer_position == "before"
        ]
        if parent.status == "waiting" and all(t.outcome in APPROVALS for t in before):
            update_task(conn, parent, status="open")
    if task.parent_task_id is None and approved:
        for signer in tasks:
            if signer.parent_task_id == task.id and signer.status == "waiting":
                update_task(conn, signer, status="open")
                schedule_timeout(conn, locked.group, signer.id, now=ctx.now)
                _notify(conn, [signer.assignee_id], locked.group, "A task to sign")
    return None


def return_task(ctx: OpContext, locked: Locked, *, target: str, comment: str | None) -> str:
    """Send the instance back to an earlier node: "previous", "start" or a node key.

    Raises:
        SubmissionError: `task.bad-target` for a node that is not earlier in this instance.
    """
    group = locked.group
    goto = return_target(ctx.uow, group, target)
    update_task(
        ctx.uow.conn,
        locked.task,
        status="done",
        outcome="returned",
        completed_at=ctx.now,
        completed_by=ctx.actor_id,
    )
    _log(ctx, locked, "returned", {"to": goto, **({"comment": comment} if comment else {})})
    finish_group(
        ctx.uow,
        group,
        outcome="returned",
        actor_id=ctx.actor_id,
        now=ctx.now,
        resume=ctx.resume,
        goto=goto,
    )
    return goto


def return_target(uow: UnitOfWork, group: TaskGroup, target: str) -> str:
    start = start_node(uow, group)
    if target == "start":
        return start
    earlier = [
        g
        for g in instance_groups(uow.conn, group.instance_id)
        if g.id < group.id and g.node_key != group.node_key
    ]
    if target == "previous":
        return earlier[-1].node_key if earlier else start
    if target == start or any(g.node_key == target for g in earlier):
        return target
    message = f"{target!r} is not an earlier step of this flow instance"
    raise SubmissionError([FieldError("target", BAD_TARGET, message)])


def start_node(uow: UnitOfWork, group: TaskGroup) -> str:
    """The key of the start node of the version the instance runs on."""
    body = uow.definitions.get_version(
        app=group.app, kind="flows", key=group.flow, version=group.flow_version
    ).body
    flow = FlowSpec.model_validate(body)
    return next(node.key for node in flow.nodes if node.type == "start")


def transfer_task(
    ctx: OpContext, locked: Locked, *, to_user: int, reason: str | None, action: str = "transferred"
) -> None:
    """Hand the task to another active user for good."""
    require_active_user(ctx.uow.conn, to_user)
    if to_user == locked.task.assignee_id:
        raise SubmissionError([FieldError("user_id", BAD_USER, "the task is already theirs")])
    update_task(ctx.uow.conn, locked.task, assignee_id=to_user)
    detail = {
        "from": locked.task.assignee_id,
        "to": to_user,
        **({"reason": reason} if reason else {}),
    }
    _log(ctx, locked, action, detail)
    _notify(ctx.uow.conn, [to_user], locked.group, "A task handed to you")


def delegate_task(ctx: OpContext, locked: Locked, *, to_user: int) -> None:
    """Let another user handle the task; it comes back to its owner, who decides."""
    require_active_user(ctx.uow.conn, to_user)
    if locked.task.owner_id is not None or to_user == locked.task.assignee_id:
        raise TransitionError("the task is already delegated or theirs", code=NOT_ALLOWED)
    update_task(ctx.uow.conn, locked.task, assignee_id=to_user, owner_id=locked.task.assignee_id)
    _log(ctx, locked, "delegated", {"from": locked.task.assignee_id, "to": to_user})
    _notify(ctx.uow.conn, [to_user], locked.group, "A task delegated to you")


def add_signers(ctx: OpContext, locked: Locked, *, user_ids: list[int], position: str) -> list[int]:
    """Add signers before (they sign first; the task waits) or after (they sign once the task
    is approved). The node completes only when they have signed too."""
    from engine.flows.tasks_store import insert_task

    task, conn = locked.task, ctx.uow.conn
    if task.parent_task_id is not None:
        raise TransitionError("signers are added to the original task", code=NOT_ALLOWED)
    if not user_ids or position not in ("before", "after"):
        raise SubmissionError([FieldError("user_ids", BAD_USER, "give users and before/after")])
    for user in user_ids:
        require_active_user(conn, user)
    status = "open" if position == "before" else "waiting"
    created = [
        insert_task(
            conn,
            group_id=task.group_id,
            instance_id=task.instance_id,
            kind=task.kind,
            assignee_id=user,
            seq=task.seq,
            parent_task_id=task.id,
            signer_position=position,
            status=status,
            created_at=ctx.now,
        )
        for user in dict.fromkeys(user_ids)
    ]
    if position == "before":
        update_task(conn, task, status="waiting")
        for task_id in created:
            schedule_timeout(conn, locked.group, task_id, now=ctx.now)
        _notify(conn, user_ids, locked.group, "A task to sign")
    _log(
        ctx,
        locked,
        "signers-added",
        {"position": position, "user_ids": user_ids, "task_ids": created},
    )
    return created


def require_active_user(conn: sa.Connection, user_id: int) -> None:
    query = sa.select(users.c.status).where(users.c.id == user_id)
    if conn.execute(query).scalar_one_or_none() != "active":
        message = f"user {user_id} does not exist or is disabled"
        raise SubmissionError([FieldError("user_id", BAD_USER, message)])


def can_see(conn: sa.Connection, locked: Locked, actor: Actor) -> bool:
    """Assignee, delegating owner, pool candidate, the instance's initiator, or an admin."""
    task = locked.task
    if actor.is_admin or actor.user_id in (task.assignee_id, task.owner_id):
        return True
    if locked.group.initiator_id == actor.user_id:
        return True
    return task.is_pool and actor.user_id in candidates_of(conn, task.id)


def checked_comment(text: str) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_COMMENT:
        message = f"a comment is 1 to {MAX_COMMENT} characters of text"
        raise SubmissionError([FieldError("comment", BAD_COMMENT, message)])
    return text


def stored_file_refs(conn: sa.Connection, file_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Name and size of each stored file, in order.

    Raises:
        SubmissionError: `task.unknown-file` at `files/<i>` for ids that are not stored.
    """
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return []
    query = sa.select(stored_files.c.id, stored_files.c.name, stored_files.c.size).where(
        stored_files.c.id.in_(wanted)
    )
    found = {
        row.id: {"id": row.id, "name": row.name, "size": row.size} for row in conn.execute(query)
    }
    errors = [
        FieldError(f"files/{i}", UNKNOWN_FILE, f"no stored file {fid!r}")
        for i, fid in enumerate(wanted)
        if fid not in found
    ]
    if errors:
        raise SubmissionError(errors)
    return [found[fid] for fid in wanted]


def _log(ctx: OpContext, locked: Locked, action: str, detail: Mapping[str, Any]) -> None:
    log_action(
        ctx.uow.conn,
        instance_id=locked.task.instance_id,
        group_id=locked.group.id,
        task_id=locked.task.id,
        action=action,
        at=ctx.now,
        actor_id=ctx.actor_id,
        detail={"node": locked.group.node_key, **detail},
    )


def _notify(
    conn: sa.Connection, user_ids: Sequence[int | None], group: TaskGroup, what: str
) -> None:
    recipients = [u for u in user_ids if u is not None]
    if recipients:
        notify_users(
            conn,
            recipients,
            subject=f"{what}: {group.node_key}",
            body=f"Flow {group.flow}, step {group.node_key}.",
            link="/tasks?box=mine",
        )


__all__ = [
    "BAD_COMMENT",
    "MAX_COMMENT",
    "UNKNOWN_FILE",
    "can_see",
    "checked_comment",
    "stored_file_refs",
    "BAD_TARGET",
    "BAD_USER",
    "NOT_ALLOWED",
    "NOT_OPEN",
    "NOT_YOURS",
    "RESTRICTABLE",
    "Locked",
    "OpContext",
    "add_signers",
    "decide_task",
    "delegate_task",
    "lock_task",
    "require_active_user",
    "require_open_and_mine",
    "return_target",
    "return_task",
    "start_node",
    "transfer_task",
]

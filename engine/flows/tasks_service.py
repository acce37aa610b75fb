"""The task service: one unit of work per operation on a user task (docs/tasks.md).

Approve, reject, complete (with field values), return, transfer, add signer, delegate, claim,
withdraw (the initiator, for the whole instance), comment with attachments and batch approve.
Field values a task submits are checked against the node's field permissions narrowed onto the
actor's form access, then written through the records service's in-transaction writer, so
that the record update, the task change and the next node's tasks commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from engine.errors import (
    EngineError,
    FieldError,
    PermissionDenied,
    SubmissionError,
    TransitionError,
)
from engine.flows.refs import TaskOutcome
from engine.flows.tasks import ResumeToken, cancel_group, finish_group, runtime_resume
from engine.flows.tasks_effects import cancel_timeout
from engine.flows.tasks_fields import check_values, claim_values, required_missing
from engine.flows.tasks_ops import (
    NOT_ALLOWED,
    NOT_YOURS,
    Locked,
    OpContext,
    add_signers,
    can_see,
    checked_comment,
    decide_task,
    delegate_task,
    lock_task,
    require_open_and_mine,
    return_task,
    start_node,
    stored_file_refs,
    transfer_task,
)
from engine.flows.tasks_store import (
    ALREADY_DONE,
    TaskGroup,
    candidates_of,
    get_task,
    group_tasks,
    log_action,
    open_groups,
    update_task,
)
from engine.forms.service import RecordService
from engine.identity.actor import Actor
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

ALREADY_CLAIMED = "task.already-claimed"
TOO_LATE = "task.withdraw-too-late"
MAX_BATCH = 200
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What an operation did: the task's state after it, and the node's outcome once decided."""

    task_id: int
    status: str
    outcome: str | None
    node_outcome: TaskOutcome | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"task_id": self.task_id, "status": self.status, "outcome": self.outcome}
        return {**out, "node_outcome": self.node_outcome, **self.extra}


@dataclass(frozen=True, slots=True)
class BatchItem:
    task_id: int
    ok: bool
    code: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id, "ok": self.ok}
        return out if self.ok else {**out, "code": self.code, "message": self.message}


class TaskService:
    """Task use cases over one database; `resume` is the flow runtime's `resume_token`."""

    def __init__(
        self,
        *,
        db: sa.Engine | sa.Connection,
        records: RecordService,
        clock: Callable[[], datetime] = utc_now,
        resume: ResumeToken = runtime_resume,
    ) -> None:
        self._db = db
        self._records = records
        self._clock = clock
        self._resume = resume

    def _run(self, actor: Actor | None, work: Callable[[OpContext], T]) -> T:
        with UnitOfWork(self._db, clock=self._clock) as uow:
            ctx = OpContext(
                uow=uow,
                actor_id=actor.user_id if actor else None,
                now=self._clock(),
                resume=self._resume,
            )
            result = work(ctx)
            uow.commit()
        return result

    # --- deciding -------------------------------------------------------------------------------

    def approve(
        self,
        *,
        task_id: int,
        actor: Actor,
        values: Mapping[str, Any] | None = None,
        comment: str | None = None,
    ) -> TaskResult:
        """Approve (approval steps) or complete (fill/handle steps), with field values."""
        return self._run(
            actor, lambda ctx: self._decide(ctx, task_id, actor, values, comment, True)
        )

    complete = approve

    def reject(
        self,
        *,
        task_id: int,
        actor: Actor,
        comment: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TaskResult:
        return self._run(
            actor, lambda ctx: self._decide(ctx, task_id, actor, values, comment, False)
        )

    def _decide(
        self,
        ctx: OpContext,
        task_id: int,
        actor: Actor,
        values: Mapping[str, Any] | None,
        comment: str | None,
        approve: bool,
    ) -> TaskResult:
        locked = lock_task(ctx, task_id)
        require_open_and_mine(ctx, locked, operation="approve" if approve else "reject")
        submitted = dict(values or {})
        # A delegate hands the task back to its owner: the owner's decision must be complete.
        resolving = locked.task.owner_id is not None
        enforce = approve and not resolving

        def write() -> Mapping[str, Any]:
            return self._write_values(ctx, locked, actor, submitted, enforce_required=enforce)

        detail = {"comment": checked_comment(comment)} if comment else {}
        node_outcome = decide_task(ctx, locked, approve=approve, detail=detail, write=write)
        return _result(ctx, task_id, node_outcome)

    def _write_values(
        self,
        ctx: OpContext,
        locked: Locked,
        actor: Actor,
        values: dict[str, Any],
        *,
        enforce_required: bool,
    ) -> Mapping[str, Any]:
        group = locked.group
        if group.form is None or group.record_id is None:
            if values:
                raise SubmissionError([FieldError("values", "task.no-record", "no record to fill")])
            return {}
        access = _access(ctx.uow, actor, group.app, group.form)
        check_values(group.node, access, values)
        writer = self._records.writer(ctx.uow, source="flow")
        needs_check = enforce_required and "required" in group.node.field_permissions.values()
        if values:  # a missing required value below rolls this update back with the rest
            after = writer.update(
                group.app, group.form, group.record_id, values, actor=ctx.actor_id
            )
        elif needs_check:
            after = writer.get(group.app, group.form, group.record_id)
        if needs_check:
            missing = required_missing(group.node, after.values)
            if missing:
                raise SubmissionError(missing)
        return values

    # --- handing over ---------------------------------------------------------------------------

    def return_to(
        self, *, task_id: int, actor: Actor, target: str = "previous", comment: str | None = None
    ) -> TaskResult:
        """Send the instance back to "previous", "start" or the key of an earlier node."""

        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            require_open_and_mine(ctx, locked, operation="return")
            goto = return_task(
                ctx, locked, target=target, comment=checked_comment(comment) if comment else None
            )
            return _result(ctx, task_id, "returned", extra={"goto": goto})

        return self._run(actor, work)

    def transfer(
        self, *, task_id: int, actor: Actor, to_user: int, reason: str | None = None
    ) -> TaskResult:
        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            require_open_and_mine(ctx, locked, operation="transfer")
            transfer_task(ctx, locked, to_user=to_user, reason=reason)
            return _result(ctx, task_id, None)

        return self._run(actor, work)

    def delegate(self, *, task_id: int, actor: Actor, to_user: int) -> TaskResult:
        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            require_open_and_mine(ctx, locked, operation="delegate")
            delegate_task(ctx, locked, to_user=to_user)
            return _result(ctx, task_id, None)

        return self._run(actor, work)

    def add_signer(
        self, *, task_id: int, actor: Actor, user_ids: Sequence[int], position: str = "after"
    ) -> TaskResult:
        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            require_open_and_mine(ctx, locked, operation="add_signer")
            created = add_signers(ctx, locked, user_ids=list(user_ids), position=position)
            return _result(ctx, task_id, None, extra={"task_ids": created})

        return self._run(actor, work)

    def claim(self, *, task_id: int, actor: Actor) -> TaskResult:
        """Take a pool task; the first committed claim wins (`task.already-claimed` after)."""

        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            task = locked.task
            if task.status != "open":
                raise _already_done(task_id)
            if not task.is_pool or task.assignee_id is not None:
                raise _conflict(f"task {task_id} is already taken", ALREADY_CLAIMED)
            if actor.user_id not in candidates_of(ctx.uow.conn, task_id):
                raise PermissionDenied(f"task {task_id} is not in your pool", code=NOT_YOURS)
            update_task(ctx.uow.conn, task, assignee_id=actor.user_id)
            cancel_timeout(ctx.uow.conn, locked.group, task_id)  # the pool's wait is over
            self._write_claim(ctx, locked.group, actor.user_id)
            log_action(
                ctx.uow.conn,
                instance_id=task.instance_id,
                group_id=task.group_id,
                task_id=task_id,
                action="claimed",
                at=ctx.now,
                actor_id=actor.user_id,
                detail={"node": locked.group.node_key},
            )
            return _result(ctx, task_id, None)

        return self._run(actor, work)

    def _write_claim(self, ctx: OpContext, group: TaskGroup, claimant: int) -> None:
        """The node's `on_claim` values (e.g. the record's assignee), in the claim's write."""
        if not group.node.on_claim or group.form is None or group.record_id is None:
            return
        writer = self._records.writer(ctx.uow, source="flow")
        record = writer.get(group.app, group.form, group.record_id)
        seen = {**record.values, "id": record.id, "owner": record.owner_id}
        values = claim_values(group.node, seen, claimant=claimant, now=ctx.now)
        writer.update(group.app, group.form, group.record_id, values, actor=claimant)

    def withdraw(self, *, task_id: int, actor: Actor, comment: str | None = None) -> TaskResult:
        """The initiator takes the instance back to its start while nobody has acted yet."""

        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            group = locked.group
            if group.initiator_id != actor.user_id:
                raise PermissionDenied("only the initiator may withdraw", code=NOT_YOURS)
            groups = open_groups(ctx.uow.conn, instance_id=group.instance_id)
            if not groups:
                raise _already_done(task_id)
            for open_group in groups:
                node = open_group.node
                if node.operations and "withdraw" not in node.operations:
                    raise TransitionError(
                        f"withdraw is not allowed at {node.key!r}", code=NOT_ALLOWED
                    )
                if any(t.status == "done" for t in group_tasks(ctx.uow.conn, open_group.id)):
                    raise TransitionError(
                        "someone has already acted: too late to withdraw", code=TOO_LATE
                    )
            goto = start_node(ctx.uow, group)
            for other in groups[:-1]:
                cancel_group(
                    ctx.uow.conn, other, reason="withdrawn", now=ctx.now, actor_id=actor.user_id
                )
            last = groups[-1]
            log_action(
                ctx.uow.conn,
                instance_id=last.instance_id,
                group_id=last.id,
                task_id=task_id,
                action="withdrawn",
                at=ctx.now,
                actor_id=actor.user_id,
                detail={
                    "node": last.node_key,
                    **({"comment": checked_comment(comment)} if comment else {}),
                },
            )
            finish_group(
                ctx.uow,
                last,
                outcome="returned",
                actor_id=actor.user_id,
                now=ctx.now,
                resume=ctx.resume,
                goto=goto,
            )
            return _result(ctx, task_id, "returned", extra={"goto": goto})

        return self._run(actor, work)

    def comment(
        self, *, task_id: int, actor: Actor, body: str, file_ids: Sequence[str] = ()
    ) -> TaskResult:
        """A comment on the task, with stored files attached (by id)."""

        def work(ctx: OpContext) -> TaskResult:
            locked = lock_task(ctx, task_id)
            if not can_see(ctx.uow.conn, locked, actor):
                raise PermissionDenied(f"task {task_id} is not yours", code=NOT_YOURS)
            node = locked.group.node
            if node.operations and "comment" not in node.operations:
                raise TransitionError(f"comments are not allowed at {node.key!r}", code=NOT_ALLOWED)
            files = stored_file_refs(ctx.uow.conn, file_ids)
            log_action(
                ctx.uow.conn,
                instance_id=locked.task.instance_id,
                group_id=locked.group.id,
                task_id=task_id,
                action="comment",
                at=ctx.now,
                actor_id=actor.user_id,
                detail={"node": node.key, "comment": checked_comment(body), "files": files},
            )
            return _result(ctx, task_id, None)

        return self._run(actor, work)

    def batch_approve(
        self, *, task_ids: Sequence[int], actor: Actor, comment: str | None = None
    ) -> list[BatchItem]:
        """Approve each task in its own transaction; report each one."""
        if not task_ids or len(task_ids) > MAX_BATCH:
            message = f"give 1 to {MAX_BATCH} task ids"
            raise SubmissionError([FieldError("task_ids", "task.bad-batch", message)])
        items = []
        for task_id in dict.fromkeys(task_ids):
            try:
                self.approve(task_id=task_id, actor=actor, comment=comment)
            except EngineError as err:
                items.append(BatchItem(task_id, False, err.code, err.message))
            else:
                items.append(BatchItem(task_id, True))
        return items


def _access(uow: UnitOfWork, actor: Actor, app: str, form: str) -> Any:
    from engine.forms.record_access import form_access

    return form_access(uow=uow, who=actor, app=app, form=form)


def _result(
    ctx: OpContext,
    task_id: int,
    node_outcome: TaskOutcome | None,
    extra: Mapping[str, Any] | None = None,
) -> TaskResult:
    task = get_task(ctx.uow.conn, task_id)
    return TaskResult(task_id, task.status, task.outcome, node_outcome, dict(extra or {}))


def _already_done(task_id: int) -> EngineError:
    return _conflict(f"task {task_id} was already handled", ALREADY_DONE)


def _conflict(message: str, code: str) -> EngineError:
    from engine.errors import ConflictError

    return ConflictError(message, code=code)


__all__ = [
    "ALREADY_CLAIMED",
    "TOO_LATE",
    "BatchItem",
    "TaskResult",
    "TaskService",
]

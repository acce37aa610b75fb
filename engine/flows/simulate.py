"""`simulate_flow`: run a flow (or a draft of it) against a sample record in a transaction that
is always rolled back, and report the path, the tasks with their would-be assignees, and the
deadlines.

The real runtime and task service run: the draft is published, the sample record created and
the instance started inside the transaction. User tasks complete with the outcome asked for
(default `approved`); timers and wait timeouts fire by moving the simulated clock to their due
time; a wait without timeout stops its branch. Record writes fire no triggers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from engine.errors import DefinitionError, Problem
from engine.flows.actions import jsonable
from engine.flows.instances import FlowStore, TokenRow
from engine.flows.refs import InstanceRef, TaskOpening
from engine.flows.runtime_env import FLOWS, FlowEnvironment, TaskPort
from engine.flows.runtime_steps import Stepper
from engine.flows.service import history_json, instance_json
from engine.flows.spec import FlowSpec, UserTaskNode
from engine.storage.form_records import StoredRecord
from engine.storage.tables import users
from engine.storage.uow import UnitOfWork

MAX_ROUNDS = 100


@dataclass
class _RecordingTasks:
    """The real task service, remembering what each user-task node opened."""

    inner: TaskPort
    opened: list[dict[str, Any]] = field(default_factory=list)

    def open_node_tasks(
        self,
        uow: UnitOfWork,
        *,
        instance: InstanceRef,
        token_id: int,
        node: UserTaskNode,
        record: StoredRecord | None,
        now: datetime,
    ) -> TaskOpening:
        opening = self.inner.open_node_tasks(
            uow, instance=instance, token_id=token_id, node=node, record=record, now=now
        )
        self.opened.append(
            {
                "instance_id": instance.id,
                "node": node.key,
                "kind": node.kind,
                "mode": node.mode,
                "opened_at": now.isoformat(),
                "skipped": opening.skipped,
                **_task_facts(uow.conn, opening.task_ids),
            }
        )
        return opening

    def cancel_node_tasks(self, uow: UnitOfWork, *, token_id: int, reason: str) -> None:
        self.inner.cancel_node_tasks(uow, token_id=token_id, reason=reason)


def _task_facts(conn: sa.Connection, task_ids: tuple[int, ...]) -> dict[str, Any]:
    """Assignees (id and username) and due times of the tasks just opened."""
    if not task_ids:
        return {"assignees": [], "due_at": None}
    from engine.storage.tables_assign import flow_task_candidates, flow_tasks

    rows = conn.execute(
        sa.select(flow_tasks.c.id, flow_tasks.c.assignee_id, flow_tasks.c.due_at).where(
            flow_tasks.c.id.in_(task_ids)
        )
    ).all()
    user_ids = {r.assignee_id for r in rows if r.assignee_id is not None}
    pool = conn.execute(
        sa.select(flow_task_candidates.c.user_id).where(
            flow_task_candidates.c.task_id.in_(task_ids)
        )
    ).scalars()
    user_ids.update(pool)
    names = dict(
        conn.execute(sa.select(users.c.id, users.c.username).where(users.c.id.in_(user_ids))).all()
    )
    dues = sorted(r.due_at for r in rows if r.due_at is not None)
    return {
        "assignees": [{"id": u, "username": names.get(u)} for u in sorted(user_ids)],
        "due_at": dues[0].isoformat() if dues else None,
    }


def simulate_flow(
    *,
    db: sa.Engine | sa.Connection,
    env: FlowEnvironment,
    app: str,
    flow: str,
    record: Mapping[str, Any] | None,
    at: datetime,
    draft: Mapping[str, Any] | None = None,
    outcomes: Mapping[str, str] | None = None,
    initiator_id: int | None = None,
) -> dict[str, Any]:
    """The simulation report (nothing is kept).

    Raises:
        DefinitionError: the draft is malformed or fails the flow checks (every problem).
        SubmissionError: the sample record is not valid for the flow's form.
    """
    recorder = _RecordingTasks(inner=env.tasks)
    sim = FlowEnvironment(registry=env.registry, listeners=[], tasks=recorder, clock=lambda: at)
    with UnitOfWork(db, clock=lambda: at) as uow:
        if draft is not None:
            _publish_draft(uow, sim, app, flow, draft)
        version = sim.flow(uow, app=app, key=flow)
        record_id = None
        if version.form is not None and record is not None:
            from engine.forms.record_writer import RecordWriter

            writer = RecordWriter(uow, sim.kit, source="system", depth=0)
            record_id = writer.create(app, version.form, record, actor=None).id
        stepper = Stepper(uow, now=at, actor_id=initiator_id, env=sim)
        root = stepper.start(
            app=app, flow=flow, record_id=record_id, initiator_id=initiator_id, trigger="simulation"
        )
        clock, deadlines = _play(uow, sim, root, at, dict(outcomes or {}))
        return _report(uow, sim, root, recorder, deadlines, version.form, record_id, clock)


def _publish_draft(
    uow: UnitOfWork, env: FlowEnvironment, app: str, flow: str, draft: Mapping[str, Any]
) -> None:
    try:
        spec = FlowSpec.model_validate(dict(draft))
    except ValidationError as err:
        raise DefinitionError(_pydantic_problems(err)) from err
    if spec.key != flow:
        problem = Problem("flow.key-mismatch", "/key", f"the draft is {spec.key!r}, not {flow!r}")
        raise DefinitionError([problem])
    env.compile(uow, app=app, spec=spec, drafts=True)
    body = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    uow.definitions.publish(app=app, kind=FLOWS, key=flow, body=body, digest=digest, actor=None)


def _pydantic_problems(err: ValidationError) -> list[Problem]:
    return [
        Problem(
            code="flow.invalid-definition",
            path="/" + "/".join(str(p) for p in item["loc"]),
            message=item["msg"],
        )
        for item in err.errors()
    ]


def _play(
    uow: UnitOfWork, env: FlowEnvironment, root: int, at: datetime, outcomes: dict[str, str]
) -> tuple[datetime, list[dict[str, Any]]]:
    """Complete tasks, fire timers and timeouts until nothing moves; the clock and deadlines."""
    clock = at
    deadlines: list[dict[str, Any]] = []
    for _ in range(MAX_ROUNDS):
        waiting = _waiting_tokens(uow, env, root)
        if not waiting:
            break
        token, node_type = min(waiting, key=lambda item: _order(item[0]))
        if token.due_at is not None:
            deadlines.append(
                {"node": token.node, "type": node_type, "due_at": token.due_at.isoformat()}
            )
            clock = max(clock, token.due_at)
        stepper = Stepper(uow, now=clock, env=env)
        if node_type == "user_task":
            stepper.resume(token.id, outcome=outcomes.get(token.node, "approved"))
        elif node_type == "timer":
            stepper.fire_timer(token.id)
        elif node_type == "wait" and token.due_at is not None:
            stepper.time_out_wait(token.id)
        else:
            break  # a wait with no timeout, a join, a subflow waiting on one of these
    return clock, deadlines


def _order(token: TokenRow) -> tuple[int, Any, int]:
    return (0, token.created_at, token.id) if token.due_at is None else (1, token.due_at, token.id)


def _waiting_tokens(uow: UnitOfWork, env: FlowEnvironment, root: int) -> list[tuple[TokenRow, str]]:
    """Waiting tokens that can be moved, of the root instance and its sub-flows."""
    store = FlowStore(uow.conn)
    found: list[tuple[TokenRow, str]] = []
    for instance_id in _family(store, root):
        instance = store.instance(instance_id)
        if instance.status != "running":
            continue
        nodes = env.flow(uow, app=instance.app, key=instance.flow, version=instance.version)
        for token in store.tokens(instance_id, live_only=True):
            if token.status == "waiting" and token.child_instance_id is None:
                kind = nodes.compiled.node(token.node).type
                if kind in ("user_task", "timer") or (kind == "wait" and token.due_at):
                    found.append((token, kind))
    return found


def _family(store: FlowStore, root: int) -> list[int]:
    ids, index = [root], 0
    while index < len(ids):
        for token in store.tokens(ids[index]):
            if token.child_instance_id is not None and token.child_instance_id not in ids:
                ids.append(token.child_instance_id)
        index += 1
    return ids


def _report(
    uow: UnitOfWork,
    env: FlowEnvironment,
    root: int,
    recorder: _RecordingTasks,
    deadlines: list[dict[str, Any]],
    form: str | None,
    record_id: int | None,
    clock: datetime,
) -> dict[str, Any]:
    store = FlowStore(uow.conn)
    family = _family(store, root)
    record_values = None
    if form is not None and record_id is not None:
        _definition, records = env.kit.open(uow, store.instance(root).app, form)
        record_values = jsonable(records.get(record_id=record_id).values)
    return {
        "instance": instance_json(store.instance(root)),
        "subflows": [instance_json(store.instance(i)) for i in family[1:]],
        "path": [history_json(h) for h in store.history(family)],
        "tasks": recorder.opened,
        "deadlines": deadlines,
        "waiting": [
            {"instance_id": t.instance_id, "node": t.node}
            for i in family
            for t in store.tokens(i, live_only=True)
        ],
        "record": record_values,
        "ended_at": clock.isoformat(),
    }


__all__ = ["MAX_ROUNDS", "simulate_flow"]

"""`Stepper`: starts instances and moves their tokens, reading and writing flow state in the
caller's unit of work.

Each entry point runs in a SAVEPOINT: a step that fails (an expression error, a refused
record write, a change loop) is rolled back whole and the instance is put in `error`, with
what to redo on retry, in the caller's transaction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import (
    ConflictError,
    EngineError,
    SubmissionError,
    TransitionError,
)
from engine.flows import actions
from engine.flows.compiler import CompiledFlow
from engine.flows.instances import InstanceRow, TokenRow
from engine.flows.runtime import as_moment, duration, is_true, join_fires, ways_out
from engine.flows.runtime_base import (
    MAX_STEPS,
    NOT_RUNNING,
    NOT_WAITING,
    STEP_LIMIT,
    WAIT_RECHECK,
    Run,
    StepBase,
    instance_ref,
    jsonable_value,
)
from engine.flows.spec import (
    ActionNode,
    EndNode,
    JoinNode,
    SubflowNode,
    TimerNode,
    UserTaskNode,
    WaitNode,
)
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork


class Stepper(StepBase):
    """Starts instances and moves their tokens (entry points below, node behaviour after)."""

    # --- entry points ---------------------------------------------------------------------------

    def start(
        self,
        *,
        app: str,
        flow: str,
        record_id: int | None,
        initiator_id: int | None,
        trigger: str = "manual",
        parent_token_id: int | None = None,
        variables: Mapping[str, Any] | None = None,
        record: StoredRecord | None = None,
    ) -> int:
        """Create an instance of the flow's current version and run it as far as it goes.

        `record` is the record as the caller just read or wrote it (saves reading it again).
        """
        version = self.env.flow(self.uow, app=app, key=flow)
        if record is not None and version.form is not None:
            self._known[(app, version.form, record.id)] = record
        instance = self.store.create_instance(
            app=app,
            flow=flow,
            version=version.version,
            form=version.form,
            record_id=record_id,
            initiator_id=initiator_id,
            now=self.now,
            depth=self.depth,
            parent_token_id=parent_token_id,
            variables=variables,
        )
        detail = {"version": version.version, "trigger": trigger, "record_id": record_id}
        self._history(instance.id, None, "started", detail, actor_id=initiator_id)
        run = Run(instance=instance, flow=version.compiled)
        self._guarded(instance.id, {"op": "start"}, self._begin, run)
        if self._depth == 0:
            self.store.flush_history()  # "started" when the step failed before writing
        return instance.id

    def resume(self, token_id: int, *, outcome: str, goto: str | None = None) -> None:
        """A user task's tasks are done: move its token on (or to `goto`)."""
        token, instance = self._waiting(token_id)
        retry = {"op": "resume", "token_id": token_id, "outcome": outcome, "goto": goto}

        def body(run: Run) -> None:
            self._resume(run, token, outcome, goto)

        self._guarded(instance.id, retry, body, locked=instance)

    def fire_timer(self, token_id: int) -> None:
        """A timer is due; a token no longer waiting (terminated, moved) is left alone."""
        waiting = self._still_waiting(token_id, "timer")
        if waiting is not None:
            found, instance = waiting
            retry = {"op": "leave", "token_id": token_id}
            self._guarded(instance.id, retry, lambda run: self._go_on(run, found), locked=instance)

    def recheck_wait(self, token_id: int, *, reschedule: bool = True) -> bool:
        """Re-evaluate a wait node's condition; True when the token moved on."""
        waiting = self._still_waiting(token_id, "wait")
        if waiting is None:
            return False
        found, instance = waiting
        moved: list[bool] = []

        def body(run: Run) -> None:
            node = run.flow.node(found.node)
            assert isinstance(node, WaitNode)
            path = f"{run.flow.paths[node.key]}/condition"
            if is_true(self._eval(run, path)):
                moved.append(True)
                self._cancel_jobs(found.id)
                self._go_on(run, found)
            elif reschedule:
                self._enqueue("flow.wait", found.id, self.now + WAIT_RECHECK)

        self._guarded(instance.id, {"op": "recheck", "token_id": token_id}, body, locked=instance)
        return bool(moved)

    def time_out_wait(self, token_id: int) -> None:
        waiting = self._still_waiting(token_id, "wait")
        if waiting is None:
            return
        found, instance = waiting

        def body(run: Run) -> None:
            node = run.flow.node(found.node)
            assert isinstance(node, WaitNode) and node.timeout is not None
            self._history(run.instance.id, node.key, "timed_out", {})
            self._cancel_jobs(found.id)
            if node.timeout.goto is not None:
                self._jump(run, found, node.timeout.goto)
            else:
                self._go_on(run, found)

        self._guarded(instance.id, {"op": "timeout", "token_id": token_id}, body, locked=instance)

    def retry(self, instance_id: int) -> None:
        """Redo the step that put the instance in `error`."""
        instance = self.store.instance(instance_id, lock=True)
        if instance.status != "error":
            raise TransitionError(f"instance {instance_id} is not in error", code=NOT_RUNNING)
        redo = dict((instance.error_detail or {}).get("retry") or {"op": "start"})
        self.store.set_status(instance_id, status="running", now=self.now)
        self._history(instance_id, None, "retried", {"redo": redo.get("op")})
        op = redo.get("op")
        token_id = int(redo.get("token_id") or 0)
        if op == "start":
            self._guarded(instance_id, redo, self._begin)
        elif op == "resume":
            self.resume(token_id, outcome=str(redo["outcome"]), goto=redo.get("goto"))
        elif op == "recheck":
            self.recheck_wait(token_id)
        elif op == "timeout":
            self.time_out_wait(token_id)
        else:
            token = self.store.token(token_id)
            self._guarded(instance_id, redo, lambda run: self._go_on(run, token))

    def terminate(self, instance_id: int, *, reason: str) -> None:
        """Stop an instance: cancel its live tokens, their tasks, timers and child instances."""
        instance = self.store.instance(instance_id, lock=True)
        if instance.status not in ("running", "error"):
            raise TransitionError(f"instance {instance_id} has ended", code=NOT_RUNNING)
        flow = self.env.flow(
            self.uow, app=instance.app, key=instance.flow, version=instance.version
        )
        self._cancel_tokens(flow.compiled, self.store.tokens(instance_id, live_only=True), reason)
        self.store.set_status(instance_id, status="terminated", now=self.now)
        self._history(instance_id, None, "terminated", {"reason": reason})
        self.store.flush_history()

    # --- the run --------------------------------------------------------------------------------

    def _guarded(
        self,
        instance_id: int,
        retry: Mapping[str, Any],
        body: Callable[[Run], None],
        run: Run | None = None,
        *,
        locked: InstanceRow | None = None,
    ) -> None:
        """Run `body` on the instance in a savepoint; `locked` is the instance row when the
        caller has just read it under its lock (it is not read again)."""
        # History rows are buffered and written once, by the outermost step: a nested step
        # (a sub-flow started inside a step) that fails drops only the rows it added.
        keep = self.store.pending_history
        savepoint = self.uow.conn.begin_nested()
        self._depth += 1
        try:
            run = run or self._open_run(instance_id, locked)
            self._running.add(instance_id)
            body(run)
            self._finish_if_done(run)
            if self._depth == 1:
                self.store.flush_history()
        except ConflictError:
            savepoint.rollback()
            self.store.discard_history(keep)
            raise
        except EngineError as err:
            savepoint.rollback()
            self.store.discard_history(keep)
            self._fail(instance_id, err, retry, None if run is None else run.node)
            if self._depth == 1:
                self.store.flush_history()
            return
        finally:
            self._depth -= 1
            self._running.discard(instance_id)
        savepoint.commit()
        self._notify_parent(run)

    def _open_run(self, instance_id: int, locked: InstanceRow | None = None) -> Run:
        instance = locked or self.store.instance(instance_id, lock=True)
        flow = self.env.flow(
            self.uow, app=instance.app, key=instance.flow, version=instance.version
        )
        return Run(instance=instance, flow=flow.compiled)

    def _begin(self, run: Run) -> None:
        token = self.store.add_token(instance_id=run.instance.id, node=run.flow.start, now=self.now)
        self._advance(run, [token])

    def _advance(self, run: Run, tokens: list[TokenRow]) -> None:
        queue = deque(tokens)
        while queue:
            token = queue.popleft()
            if token.id in run.cancelled:
                continue
            run.steps += 1
            run.node = token.node
            if run.steps > MAX_STEPS:
                raise TransitionError(
                    f"more than {MAX_STEPS} steps without waiting: the flow loops",
                    code=STEP_LIMIT,
                )
            node = run.flow.node(token.node)
            self._history(run.instance.id, node.key, "entered", {"type": node.type})
            queue.extend(self._enter(run, token, node))

    def _enter(self, run: Run, token: TokenRow, node: Any) -> list[TokenRow]:
        if isinstance(node, EndNode):
            self.store.update_token(token.id, now=self.now, status="done")
            self._history(run.instance.id, node.key, "ended", {"outcome": node.outcome})
            return []
        if isinstance(node, JoinNode):
            return self._join(run, token, node)
        if isinstance(node, ActionNode):
            changes = actions.run_actions(self._action_context(run), node)
            run.record_loaded = False
            self._known.clear()
            self._history(run.instance.id, node.key, "acted", {"changes": changes})
        elif isinstance(node, TimerNode):
            return self._wait_timer(run, token, node)
        elif isinstance(node, WaitNode):
            return self._wait_condition(run, token, node)
        elif isinstance(node, UserTaskNode):
            return self._open_tasks(run, token, node)
        elif isinstance(node, SubflowNode):
            return self._subflow(run, token, node)
        return self._leave(run, token)

    def _leave(self, run: Run, token: TokenRow, outcome: str | None = None) -> list[TokenRow]:
        guarded = any(e.condition is not None for e in run.flow.outgoing.get(token.node, ()))
        values = self._values(run) if guarded else {}  # no record read for plain edges
        edges = ways_out(run.flow, token.node, values, now=self.now, outcome=outcome)
        self.store.update_token(token.id, now=self.now, status="done")
        branch = next((e.branch for e in edges if e.branch is not None), None)
        if branch is not None:
            self._history(run.instance.id, token.node, "branched", {"branch": branch})
        return [
            self.store.add_token(
                instance_id=run.instance.id, node=e.to, now=self.now, came_from=token.node
            )
            for e in edges
        ]

    def _go_on(self, run: Run, token: TokenRow, outcome: str | None = None) -> None:
        self._advance(run, self._leave(run, token, outcome))

    def _jump(self, run: Run, token: TokenRow, target: str) -> None:
        if target not in run.flow.nodes:
            raise TransitionError(f"no node {target!r} to go to", code="flow.unknown-node")
        self.store.update_token(token.id, now=self.now, status="done")
        new = self.store.add_token(
            instance_id=run.instance.id, node=target, now=self.now, came_from=token.node
        )
        self._advance(run, [new])

    def _resume(self, run: Run, token: TokenRow, outcome: str, goto: str | None) -> None:
        run.outcome = outcome
        detail = {"outcome": outcome, "goto": goto}
        self._history(run.instance.id, token.node, "resumed", detail, actor_id=self.actor_id)
        if goto is not None:
            self._jump(run, token, goto)
        else:
            self._go_on(run, token, outcome)

    def _join(self, run: Run, token: TokenRow, node: JoinNode) -> list[TokenRow]:
        self.store.update_token(token.id, now=self.now, status="waiting")
        live = self.store.tokens(run.instance.id, live_only=True)
        here = [t for t in live if t.node == node.key and t.status == "waiting"]
        arrived = {t.came_from or "" for t in here}
        if not join_fires(run.flow, node, arrived):
            return []
        others = [t.id for t in here if t.id != token.id]
        self.store.set_tokens(others, status="done", now=self.now)
        if node.mode != "all":
            upstream = run.flow.upstream.get(node.key, frozenset())
            stale = [t for t in live if t.node in upstream and t.id not in others]
            cancel = [t for t in stale if t.id != token.id]
            run.cancelled.update(t.id for t in cancel)
            self._cancel_tokens(run.flow, cancel, "join")
        self._history(run.instance.id, node.key, "joined", {"arrived": sorted(arrived)})
        return self._leave(run, token)

    def _wait_timer(self, run: Run, token: TokenRow, node: TimerNode) -> list[TokenRow]:
        if node.delay is not None and node.business_time and node.calendar is not None:
            due = self._add_business(run.instance.app, node.calendar, duration(node.delay))
        elif node.delay is not None:
            due = self.now + duration(node.delay)
        else:
            due = as_moment(self._eval(run, f"{run.flow.paths[node.key]}/until"))
        if due <= self.now:
            return self._leave(run, token)
        self.store.update_token(token.id, now=self.now, status="waiting", due_at=due)
        self._enqueue("flow.timer", token.id, due)
        self._history(run.instance.id, node.key, "timer_set", {"due_at": due.isoformat()})
        return []

    def _wait_condition(self, run: Run, token: TokenRow, node: WaitNode) -> list[TokenRow]:
        if is_true(self._eval(run, f"{run.flow.paths[node.key]}/condition")):
            return self._leave(run, token)
        due = None
        if node.timeout is not None:
            due = self.now + duration(node.timeout.after)
            self._enqueue("flow.wait_timeout", token.id, due)
        self._enqueue("flow.wait", token.id, self.now + WAIT_RECHECK)
        self.store.update_token(token.id, now=self.now, status="waiting", due_at=due)
        self._history(run.instance.id, node.key, "waiting", {})
        return []

    def _open_tasks(self, run: Run, token: TokenRow, node: UserTaskNode) -> list[TokenRow]:
        self.store.update_token(token.id, now=self.now, status="waiting")
        opening = self.env.tasks.open_node_tasks(
            self.uow,
            instance=instance_ref(run.instance),
            token_id=token.id,
            node=node,
            record=self._record(run),
            now=self.now,
        )
        if opening.skipped:
            self._history(run.instance.id, node.key, "skipped", {"reason": "no assignee"})
            self.store.update_token(token.id, now=self.now, status="active")
            return self._leave(run, token)
        detail = {"tasks": list(opening.task_ids)}
        self._history(run.instance.id, node.key, "tasks_opened", detail)
        return []

    def _subflow(self, run: Run, token: TokenRow, node: SubflowNode) -> list[TokenRow]:
        inputs = {
            key: jsonable_value(self._eval(run, f"{run.flow.paths[node.key]}/inputs/{key}"))
            for key in node.inputs
        }
        if node.wait:
            self.store.update_token(token.id, now=self.now, status="waiting")
        child = self.start(
            app=run.instance.app,
            flow=node.flow,
            record_id=run.instance.record_id,
            initiator_id=run.instance.initiator_id,
            trigger="subflow",
            parent_token_id=token.id if node.wait else None,
            variables=inputs,
        )
        self.store.update_token(token.id, now=self.now, child_instance_id=child)
        self._history(run.instance.id, node.key, "subflow", {"instance": child})
        if node.wait and self.store.instance(child).status != "completed":
            return []
        self.store.update_token(token.id, now=self.now, status="active")
        return self._leave(run, token)

    # --- endings, failures ----------------------------------------------------------------------

    def _finish_if_done(self, run: Run) -> None:
        if self.store.tokens(run.instance.id, live_only=True):
            return
        self.store.set_status(run.instance.id, status="completed", now=self.now)
        self._history(run.instance.id, None, "completed", {})

    def _notify_parent(self, run: Run | None) -> None:
        """A finished child resumes the parent's waiting subflow token (unless that parent is
        mid-step in this stepper: it looks at the child's status itself)."""
        if run is None or run.instance.parent_token_id is None:
            return
        child = self.store.instance(run.instance.id)
        if child.status != "completed":
            return
        parent = self.store.token(run.instance.parent_token_id)
        if parent.instance_id in self._running or parent.status != "waiting":
            return
        retry = {"op": "leave", "token_id": parent.id}
        self._guarded(parent.instance_id, retry, lambda r: self._go_on(r, parent))

    def _fail(
        self, instance_id: int, err: EngineError, retry: Mapping[str, Any], node: str | None
    ) -> None:
        detail: dict[str, Any] = {"message": err.message, "node": node, "retry": dict(retry)}
        if isinstance(err, SubmissionError):
            detail["errors"] = [e.to_dict() for e in err.errors]
        self.store.set_status(
            instance_id, status="error", now=self.now, error_code=err.code, error_detail=detail
        )
        self._history(instance_id, node, "error", {"code": err.code, "message": err.message})

    def _cancel_tokens(self, flow: CompiledFlow, tokens: list[TokenRow], reason: str) -> None:
        for token in tokens:
            node = flow.nodes.get(token.node)
            if isinstance(node, UserTaskNode) and token.status == "waiting":
                self.env.tasks.cancel_node_tasks(self.uow, token_id=token.id, reason=reason)
            if token.child_instance_id is not None:
                child = self.store.instance(token.child_instance_id)
                if child.status in ("running", "error"):
                    self.terminate(child.id, reason=reason)
            self._cancel_jobs(token.id)
        self.store.set_tokens([t.id for t in tokens], status="cancelled", now=self.now)


__all__ = ["MAX_STEPS", "NOT_WAITING", "STEP_LIMIT", "Stepper", "UnitOfWork"]

"""`StepBase`: what every flow step reads and writes besides the graph — the unit of work, the
clock, the store, the instance's record and expression values, history, jobs — shared by
`Stepper` (runtime_steps.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.errors import (
    NotFoundError,
    TransitionError,
)
from engine.expr import evaluate
from engine.flows import actions
from engine.flows.compiler import CompiledFlow
from engine.flows.instances import FlowStore, InstanceRow, TokenRow
from engine.flows.refs import InstanceRef
from engine.flows.runtime_env import FlowEnvironment, environment
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork

MAX_STEPS = 500  # nodes one run may pass: more is a loop with no task, timer or wait in it
WAIT_RECHECK = timedelta(minutes=5)
NOT_WAITING = "flow.token-not-waiting"
STEP_LIMIT = "flow.step-limit"
NOT_RUNNING = "flow.not-running"
NO_CALENDAR = "flow.calendar-missing"


@dataclass
class Run:
    instance: InstanceRow
    flow: CompiledFlow
    outcome: str | None = None
    steps: int = 0
    node: str | None = None  # where the run is, for error reports
    record: StoredRecord | None = None
    record_loaded: bool = False
    cancelled: set[int] = field(default_factory=set)  # tokens cancelled during this run


class StepBase:
    """Flow steps at time `now` by `actor_id`; record writes made at change `depth`."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        now: datetime,
        actor_id: int | None = None,
        depth: int = 1,
        env: FlowEnvironment | None = None,
    ) -> None:
        self.uow = uow
        self.now = now
        self.actor_id = actor_id
        self.depth = depth
        self.env = env or environment()
        self.store = FlowStore(uow.conn)
        self._running: set[int] = set()
        self._depth = 0  # nesting of guarded steps (sub-flows start inside a step)
        self._known: dict[tuple[str, str, int], StoredRecord] = {}  # records as last seen

    def _add_business(self, app: str, calendar_key: str, span: timedelta) -> datetime:
        from engine.flows.calendar import BusinessCalendar, add_business
        from engine.flows.calendar_spec import CalendarSpec

        try:
            row = self.uow.definitions.get_current(app=app, kind="calendars", key=calendar_key)
        except NotFoundError as err:
            raise TransitionError(
                f"no calendar {calendar_key!r} in app {app!r}", code=NO_CALENDAR
            ) from err
        calendar = BusinessCalendar(CalendarSpec.model_validate(row.body))
        return add_business(calendar, self.now, span.total_seconds())

    # --- helpers --------------------------------------------------------------------------------

    def _waiting(self, token_id: int) -> tuple[TokenRow, InstanceRow]:
        """A waiting token and its running instance, locked (the token is read under the lock)."""
        instance = self.store.instance_of_token(token_id)
        token = self.store.token(token_id)
        if token.status != "waiting" or instance.status != "running":
            raise TransitionError(f"token {token_id} is not waiting", code=NOT_WAITING)
        return token, instance

    def _still_waiting(self, token_id: int, node_type: str) -> tuple[TokenRow, InstanceRow] | None:
        try:
            token, instance = self._waiting(token_id)
        except (NotFoundError, TransitionError):
            return None
        flow = self.env.flow(
            self.uow, app=instance.app, key=instance.flow, version=instance.version
        )
        node = flow.compiled.nodes.get(token.node)
        return (token, instance) if node is not None and node.type == node_type else None

    def _record(self, run: Run) -> StoredRecord | None:
        instance = run.instance
        if not run.record_loaded:
            run.record = None
            known = self._known.get((instance.app, instance.form or "", instance.record_id or 0))
            if known is not None:
                run.record = known
            elif instance.form is not None and instance.record_id is not None:
                _definition, store = self.env.kit.open(self.uow, instance.app, instance.form)
                try:
                    run.record = store.get(record_id=instance.record_id, include_deleted=True)
                except NotFoundError:
                    run.record = None
            run.record_loaded = True
        return run.record

    def _values(self, run: Run) -> dict[str, Any]:
        record = self._record(run)
        values = actions.record_values(record, instance=run.instance, outcome=run.outcome)
        form = run.instance.form
        if run.flow.related_paths and record is not None and form is not None:
            from engine.flows.related import load_related

            related = load_related(
                self.uow, self.env.kit, app=run.instance.app, form=form, values=values,
                paths=run.flow.related_paths,
            )  # fmt: skip
            values.update(related)
        return values

    def _eval(self, run: Run, path: str) -> Any:
        return evaluate(run.flow.expr(path), self._values(run), now=self.now)

    def _action_context(self, run: Run) -> actions.ActionContext:
        return actions.ActionContext(
            uow=self.uow,
            env=self.env,
            instance=run.instance,
            flow=run.flow,
            record=self._record(run),
            values=self._values(run),
            now=self.now,
            depth=self.depth,
        )

    def _history(
        self,
        instance_id: int,
        node: str | None,
        event: str,
        detail: Mapping[str, Any],
        *,
        actor_id: int | None = None,
    ) -> None:
        self.store.add_history(
            instance_id=instance_id,
            node=node,
            event=event,
            at=self.now,
            actor_id=actor_id,
            detail=detail,
        )

    def _enqueue(self, kind: str, token_id: int, due: datetime) -> None:
        from engine.jobs.queue import enqueue

        enqueue(
            self.uow.conn,
            kind=kind,
            payload={"token_id": token_id},
            due_at=due,
            key=f"{kind}:{token_id}",
        )

    def _cancel_jobs(self, token_id: int) -> None:
        from engine.jobs.queue import cancel

        for kind in ("flow.timer", "flow.wait", "flow.wait_timeout"):
            cancel(self.uow.conn, key=f"{kind}:{token_id}")


def instance_ref(instance: InstanceRow) -> InstanceRef:
    return InstanceRef(
        id=instance.id,
        app=instance.app,
        flow=instance.flow,
        version=instance.version,
        form=instance.form,
        record_id=instance.record_id,
        initiator_id=instance.initiator_id,
    )


def jsonable_value(value: Any) -> Any:
    return actions.jsonable(value)


__all__ = [
    "MAX_STEPS",
    "NOT_RUNNING",
    "NOT_WAITING",
    "NO_CALENDAR",
    "STEP_LIMIT",
    "WAIT_RECHECK",
    "Run",
    "StepBase",
    "UnitOfWork",
    "instance_ref",
    "jsonable_value",
]

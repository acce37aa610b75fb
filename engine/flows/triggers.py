"""`FlowTriggers`: the record listener that starts flows and wakes waiting tokens.

On each record change it starts the app's flows whose record trigger matches (kind, watched
fields, condition), re-checks wait nodes of running instances on that record, and keeps the
`date_reached` jobs of the record in step with its date field.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.expr import evaluate
from engine.flows.actions import record_values
from engine.flows.instances import FlowStore, InstanceRow
from engine.flows.runtime import as_moment, duration, is_true
from engine.flows.runtime_env import FlowVersion, environment
from engine.flows.runtime_steps import Stepper
from engine.flows.spec import Trigger

if TYPE_CHECKING:
    from engine.forms.events import RecordChange
    from engine.storage.form_records import StoredRecord
    from engine.storage.uow import UnitOfWork

DATE_JOB = "flow.date_reached"
_KINDS = {
    "record_created": ("created",),
    "record_updated": ("updated", "restored"),
    "field_changed": ("updated",),
    "record_deleted": ("deleted",),
}


class FlowTriggers:
    """A `ChangeListener`: `app.state.record_listeners.append(FlowTriggers())`."""

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        env = environment()
        now = uow.clock()
        stepper = Stepper(uow, now=now, actor_id=change.actor_id, depth=change.depth + 1, env=env)
        flows = env.flows(uow, app=change.app)
        seen: StoredRecord | None = change.after  # as written; after a flow ran, read again
        for flow in flows:
            if not flow.compiled.spec.enabled or flow.form != change.form:
                continue
            trigger = flow.compiled.spec.trigger
            if trigger.type == "date_reached":
                schedule_date_job(uow, flow, change.record_id, change.after.values, now)
            elif matches(flow, change, now):
                stepper.start(
                    app=change.app,
                    flow=flow.key,
                    record_id=change.record_id,
                    initiator_id=change.actor_id,
                    trigger=trigger.type,
                    record=seen,
                )
                seen = None
        if any(n.type == "wait" for f in flows for n in f.compiled.spec.nodes):
            self._wake_waits(uow, stepper, change)

    def _wake_waits(self, uow: UnitOfWork, stepper: Stepper, change: RecordChange) -> None:
        store = FlowStore(uow.conn)
        waiting = store.waiting_on_record(
            app=change.app, form=change.form, record_id=change.record_id
        )
        for _instance, token in waiting:
            stepper.recheck_wait(token.id, reschedule=False)


def matches(flow: FlowVersion, change: RecordChange, now: datetime) -> bool:
    """Whether `change` starts `flow`: kind, watched fields, then the trigger's condition."""
    trigger: Trigger = flow.compiled.spec.trigger
    if change.kind not in _KINDS.get(trigger.type, ()):
        return False
    if trigger.type == "field_changed" and not (change.changed & set(trigger.fields)):
        return False
    if trigger.condition is None:
        return True
    values = record_values(change.after, instance=_no_instance(change), outcome=None)
    return is_true(evaluate(flow.compiled.expr("/trigger/condition"), values, now=now))


def schedule_date_job(
    uow: UnitOfWork, flow: FlowVersion, record_id: int, values: dict[str, Any], now: datetime
) -> None:
    """(Re)queue the start of a date_reached flow at the record's date plus the offset."""
    from engine.jobs.queue import cancel, enqueue

    trigger = flow.compiled.spec.trigger
    key = f"{DATE_JOB}:{flow.app}:{flow.key}:{record_id}"
    cancel(uow.conn, key=key)
    value = values.get(trigger.date_field or "")
    if value is None:
        return
    due = as_moment(value) + (duration(trigger.offset) if trigger.offset else duration("PT0S"))
    if due < now:
        return
    payload = {"app": flow.app, "flow": flow.key, "record_id": record_id, "at": due.isoformat()}
    enqueue(uow.conn, kind=DATE_JOB, payload=payload, due_at=due, key=key)


def _no_instance(change: RecordChange) -> InstanceRow:
    """Trigger conditions see the record and the actor as `$initiator`, before any instance."""
    return InstanceRow(
        id=0,
        app=change.app,
        flow="",
        version=0,
        form=change.form,
        record_id=change.record_id,
        status="running",
        initiator_id=change.actor_id,
        parent_token_id=None,
        depth=change.depth,
        variables={},
        error_code=None,
        error_detail=None,
        started_at=change.after.updated_at,
        ended_at=None,
        updated_at=change.after.updated_at,
    )


def install_flow_triggers(listeners: list[Any]) -> FlowTriggers:
    """Append the flow listener to an app's record listeners and make that list the one flow
    writes fire (so SLA, audit … hear flow writes too); returns the listener."""
    from engine.flows.runtime_env import FlowEnvironment, use_environment

    listener = FlowTriggers()
    listeners.append(listener)
    use_environment(FlowEnvironment(listeners=listeners))
    return listener


__all__ = ["DATE_JOB", "FlowTriggers", "install_flow_triggers", "matches", "schedule_date_job"]

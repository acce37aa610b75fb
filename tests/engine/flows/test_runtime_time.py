"""Timers, waits, sub-flows, failures and loops, with the job worker run on a moved clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.flows.jobs import job_handlers
from engine.flows.runtime_steps import Stepper
from tests.engine.flows.conftest import T0, FlowKit

Kit = Callable[[Mapping[str, str]], FlowKit]


def run_jobs(engine: sa.Engine, at: datetime) -> int:
    from engine.jobs.worker import Worker

    return Worker(engine, handlers=job_handlers(), clock=lambda: at).drain()


def start(kit: FlowKit, flow: str, record_id: int | None, at: datetime = T0) -> int:
    with kit.unit(at) as uow:
        instance_id = Stepper(uow, now=at).start(
            app="fl", flow=flow, record_id=record_id, initiator_id=None
        )
        uow.commit()
    return instance_id


TIMER = """
key: timer
label: Timer
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: pause, type: timer, delay: PT4H}
  - {key: until_due, type: timer, until: due}
  - key: remind
    type: action
    actions: [{type: set_fields, values: {note: '"reminded"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: pause}
  - {from: pause, to: until_due}
  - {from: until_due, to: remind}
  - {from: remind, to: end}
"""


def test_timers_fire_when_the_worker_runs_after_their_due_time(flow_kit: Kit) -> None:
    kit = flow_kit({"timer": TIMER})
    record = kit.create(subject="a", due=T0 + timedelta(days=1))
    instance_id = start(kit, "timer", record.id)
    assert kit.live(instance_id) == {"pause": "waiting"}
    run_jobs(kit.engine, T0 + timedelta(hours=3))
    assert kit.live(instance_id) == {"pause": "waiting"}
    run_jobs(kit.engine, T0 + timedelta(hours=4, seconds=1))
    assert kit.live(instance_id) == {"until_due": "waiting"}
    [token] = [t for t in kit.tokens(instance_id) if t.node == "until_due"]
    assert token.due_at == T0 + timedelta(days=1)
    run_jobs(kit.engine, T0 + timedelta(days=1, seconds=1))
    assert kit.instance(instance_id).status == "completed"
    assert kit.get(record.id).values["note"] == "reminded"


WAIT = """
key: wait
label: Wait
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: until_resolved
    type: wait
    condition: status = "resolved"
    timeout: {after: P2D, goto: escalate}
  - key: escalate
    type: action
    actions: [{type: set_fields, values: {note: '"escalated"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: until_resolved}
  - {from: until_resolved, to: end}
  - {from: escalate, to: end}
"""


def test_wait_moves_on_when_the_record_changes(flow_kit: Kit) -> None:
    kit = flow_kit({"wait": WAIT})
    record = kit.create(subject="a")
    [instance] = kit.instances()
    assert kit.live(instance.id) == {"until_resolved": "waiting"}
    kit.update(record.id, status="open")
    assert kit.live(instance.id) == {"until_resolved": "waiting"}
    kit.update(record.id, status="resolved")
    assert kit.instance(instance.id).status == "completed"
    run_jobs(kit.engine, T0 + timedelta(days=3))  # the timeout was cancelled
    assert kit.path(instance.id) == ["start", "until_resolved", "end"]


def test_wait_timeout_takes_its_goto(flow_kit: Kit) -> None:
    kit = flow_kit({"wait": WAIT})
    record = kit.create(subject="a")
    [instance] = kit.instances()
    run_jobs(kit.engine, T0 + timedelta(days=1))  # re-checks: still waiting
    assert kit.live(instance.id) == {"until_resolved": "waiting"}
    run_jobs(kit.engine, T0 + timedelta(days=2, minutes=1))
    assert kit.instance(instance.id).status == "completed"
    assert kit.get(record.id).values["note"] == "escalated"


PARENT = """
key: parent
label: Parent
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: child, type: subflow, flow: child, inputs: {why: subject}}
  - key: after
    type: action
    actions: [{type: set_fields, values: {note: '"after child"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: child}
  - {from: child, to: after}
  - {from: after, to: end}
"""
CHILD = """
key: child
label: Child
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: pause, type: timer, delay: PT1H}
  - {key: end, type: end}
edges:
  - {from: start, to: pause}
  - {from: pause, to: end}
"""


def test_subflow_waits_for_the_child_instance(flow_kit: Kit) -> None:
    kit = flow_kit({"parent": PARENT, "child": CHILD})
    record = kit.create(subject="a")
    parent_id = start(kit, "parent", record.id)
    [child] = [i for i in kit.instances(flow="child")]
    assert child.variables == {"why": "a"}
    assert kit.live(parent_id) == {"child": "waiting"}
    run_jobs(kit.engine, T0 + timedelta(hours=2))
    assert kit.instance(child.id).status == "completed"
    assert kit.instance(parent_id).status == "completed"
    assert kit.get(record.id).values["note"] == "after child"


BROKEN = """
key: broken
label: Broken
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: stamp
    type: action
    actions: [{type: set_fields, values: {note: '"stamped"'}}]
  - key: decide
    type: action
    actions: [{type: set_fields, values: {status: 'IF(priority > 2, "open", "bogus")'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: stamp}
  - {from: stamp, to: decide}
  - {from: decide, to: end}
"""


def test_a_failing_step_rolls_back_and_the_instance_can_be_retried(flow_kit: Kit) -> None:
    from engine.flows.service import FlowService
    from engine.identity.actor import Actor

    kit = flow_kit({"broken": BROKEN})
    record = kit.create(subject="a", priority=1)  # "bogus" is no status: the write is refused
    [instance] = kit.instances()
    assert (instance.status, instance.error_code) == ("error", "submission.invalid")
    assert instance.error_detail is not None
    assert instance.error_detail["node"] == "decide"
    assert kit.get(record.id).values["note"] is None  # the step's write was rolled back
    assert kit.tokens(instance.id) == []
    kit.update(record.id, priority=3)
    service = FlowService(db=kit.engine, env=kit.env, clock=lambda: T0)
    admin = Actor(user_id=1, username="admin", is_admin=True)
    assert service.retry(instance_id=instance.id, actor=admin).status == "completed"
    assert kit.get(record.id).values["note"] == "stamped"


LOOP = """
key: loop
label: Loop
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: a, type: parallel_split}
  - {key: b, type: parallel_split}
  - {key: end, type: end}
edges:
  - {from: start, to: a}
  - {from: a, to: b}
  - {from: b, to: a}
  - {from: b, to: end}
"""


def test_a_loop_without_waiting_stops_in_error(flow_kit: Kit) -> None:
    kit = flow_kit({"loop": LOOP})
    record = kit.create(subject="a")
    instance_id = start(kit, "loop", record.id)
    found = kit.instance(instance_id)
    assert (found.status, found.error_code) == ("error", "flow.step-limit")


PING = """
key: ping
label: Ping
form: ticket
trigger: {type: record_updated}
nodes:
  - {key: start, type: start}
  - key: bump
    type: action
    actions: [{type: set_fields, values: {priority: 'priority + 1'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: bump}
  - {from: bump, to: end}
"""


def test_a_trigger_cycle_is_reported_as_an_error_and_ends(flow_kit: Kit) -> None:
    kit = flow_kit({"ping": PING})
    record = kit.create(subject="a", priority=0)
    kit.update(record.id, note="go")
    rows = kit.instances()
    errors = [i for i in rows if i.status == "error"]
    assert len(errors) == 1
    assert errors[0].error_code == "record.change-loop"
    assert 1 < len(rows) <= 20
    assert kit.get(record.id).values["priority"] == len(rows) - 1


BUSINESS = """
key: business
label: Business timer
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: pause, type: timer, delay: PT10H, business_time: true, calendar: office}
  - {key: end, type: end}
edges:
  - {from: start, to: pause}
  - {from: pause, to: end}
"""


def test_a_business_time_timer_counts_working_hours_of_its_calendar(flow_kit: Kit) -> None:
    kit = flow_kit({"business": BUSINESS})
    record = kit.create(subject="a")
    instance_id = start(kit, "business", record.id)  # Monday 09:00: 8 h today, 2 h tomorrow
    [token] = [t for t in kit.tokens(instance_id) if t.node == "pause"]
    assert token.due_at == T0 + timedelta(days=1, hours=2)
    run_jobs(kit.engine, T0 + timedelta(hours=10))
    assert kit.instance(instance_id).status == "running"
    run_jobs(kit.engine, T0 + timedelta(days=1, hours=2))
    assert kit.instance(instance_id).status == "completed"

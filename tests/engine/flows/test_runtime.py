"""The runtime on a real database: triggers start instances, tokens move through every node
type, user tasks resume through `resume_token`, failures put the instance in error."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.flows.runtime import resume_token
from tests.engine.flows.conftest import T0, FlowKit

Kit = Callable[[Mapping[str, str]], FlowKit]

APPROVAL = """
key: approval
label: Approval
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: triage
    type: condition
    branches:
      - {key: urgent, expr: priority >= 3, to: review}
      - {key: normal, default: true, to: open_it}
  - key: review
    type: user_task
    assignees: [{type: initiator}]
  - key: open_it
    type: action
    actions: [{type: set_fields, values: {status: '"open"'}}]
  - key: reject_it
    type: action
    actions: [{type: set_fields, values: {status: '"closed"', note: '"rejected"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: triage}
  - {from: review, to: open_it, outcome: approved}
  - {from: review, to: reject_it, outcome: rejected}
  - {from: open_it, to: end}
  - {from: reject_it, to: end}
"""


def test_default_branch_runs_to_the_end(flow_kit: Kit) -> None:
    kit = flow_kit({"approval": APPROVAL})
    record = kit.create(subject="printer", priority=1)
    [instance] = kit.instances()
    assert instance.status == "completed"
    assert instance.record_id == record.id
    assert kit.path(instance.id) == ["start", "triage", "open_it", "end"]
    assert kit.get(record.id).values["status"] == "open"


def test_user_task_waits_and_resume_token_takes_the_outcome_edge(flow_kit: Kit) -> None:
    kit = flow_kit({"approval": APPROVAL})
    record = kit.create(subject="fire", priority=5)
    [instance] = kit.instances()
    assert instance.status == "running"
    assert kit.live(instance.id) == {"review": "waiting"}
    token = kit.tasks.token_at("review")
    with kit.unit() as uow:
        resume_token(uow, token_id=token, outcome="rejected", actor_id=None, now=T0)
        uow.commit()
    assert kit.instance(instance.id).status == "completed"
    values = kit.get(record.id).values
    assert (values["status"], values["note"]) == ("closed", "rejected")
    assert kit.path(instance.id)[-2:] == ["reject_it", "end"]


PARALLEL = """
key: parallel
label: Parallel
form: ticket
trigger: {type: field_changed, fields: [status], condition: status = "open"}
nodes:
  - {key: start, type: start}
  - {key: split, type: parallel_split}
  - {key: check_a, type: user_task, assignees: [{type: initiator}]}
  - {key: check_b, type: user_task, assignees: [{type: initiator}]}
  - {key: join, type: join, mode: JOIN_MODE}
  - key: close
    type: action
    actions: [{type: set_fields, values: {note: '"checked"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: split}
  - {from: split, to: check_a}
  - {from: split, to: check_b}
  - {from: check_a, to: join}
  - {from: check_b, to: join}
  - {from: join, to: close}
  - {from: close, to: end}
"""


def _resume(kit: FlowKit, node: str, outcome: str = "done") -> None:
    with kit.unit() as uow:
        resume_token(uow, token_id=kit.tasks.token_at(node), outcome=outcome, actor_id=None, now=T0)  # type: ignore[arg-type]
        uow.commit()


def test_field_changed_starts_only_when_a_watched_field_changes(flow_kit: Kit) -> None:
    kit = flow_kit({"parallel": PARALLEL.replace("JOIN_MODE", "all")})
    record = kit.create(subject="a", status="open")  # a create is not a field change
    kit.update(record.id, note="x")  # status unchanged
    assert kit.instances() == []
    kit.update(record.id, status="waiting")  # changed, but the condition is false
    assert kit.instances() == []
    kit.update(record.id, status="open")
    assert len(kit.instances()) == 1


def test_join_all_waits_for_every_branch(flow_kit: Kit) -> None:
    kit = flow_kit({"parallel": PARALLEL.replace("JOIN_MODE", "all")})
    record = kit.create(subject="a")
    kit.update(record.id, status="open")
    [instance] = kit.instances()
    assert kit.live(instance.id) == {"check_a": "waiting", "check_b": "waiting"}
    _resume(kit, "check_a")
    assert kit.live(instance.id) == {"check_b": "waiting", "join": "waiting"}
    assert kit.instance(instance.id).status == "running"
    _resume(kit, "check_b")
    assert kit.instance(instance.id).status == "completed"
    assert kit.get(record.id).values["note"] == "checked"
    assert kit.path(instance.id).count("close") == 1


def test_join_any_fires_once_and_cancels_the_other_branch(flow_kit: Kit) -> None:
    kit = flow_kit({"parallel": PARALLEL.replace("JOIN_MODE", "any")})
    record = kit.create(subject="a")
    kit.update(record.id, status="open")
    [instance] = kit.instances()
    _resume(kit, "check_b")
    assert kit.instance(instance.id).status == "completed"
    cancelled = {t.node for t in kit.tokens(instance.id) if t.status == "cancelled"}
    assert cancelled == {"check_a"}
    assert [reason for _t, reason in kit.tasks.cancelled] == ["join"]


def test_resume_of_a_token_that_does_not_wait_is_refused(flow_kit: Kit) -> None:
    import pytest

    from engine.errors import TransitionError

    kit = flow_kit({"approval": APPROVAL})
    kit.create(subject="fire", priority=5)
    token = kit.tasks.token_at("review")
    _resume(kit, "review", "approved")
    with kit.unit() as uow, pytest.raises(TransitionError) as err:
        resume_token(uow, token_id=token, outcome="approved", actor_id=None, now=T0)
    assert err.value.code == "flow.token-not-waiting"


RETURNING = """
key: returning
label: Return
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - {key: fill, type: user_task, kind: fill, assignees: [{type: initiator}]}
  - {key: approve, type: user_task, kind: approve, assignees: [{type: initiator}]}
  - {key: end, type: end}
edges:
  - {from: start, to: fill}
  - {from: fill, to: approve}
  - {from: approve, to: end}
"""


def test_goto_sends_the_token_back_to_an_earlier_node(flow_kit: Kit) -> None:
    from engine.flows.runtime_steps import Stepper

    kit = flow_kit({"returning": RETURNING})
    record = kit.create(subject="a")
    with kit.unit() as uow:
        instance_id = Stepper(uow, now=T0).start(
            app="fl", flow="returning", record_id=record.id, initiator_id=None
        )
        uow.commit()
    _resume(kit, "fill")
    with kit.unit() as uow:
        token = kit.tasks.token_at("approve")
        resume_token(uow, token_id=token, outcome="returned", actor_id=None, now=T0, goto="fill")
        uow.commit()
    assert kit.live(instance_id) == {"fill": "waiting"}
    assert kit.path(instance_id) == ["start", "fill", "approve", "fill"]

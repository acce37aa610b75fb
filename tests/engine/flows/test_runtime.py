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

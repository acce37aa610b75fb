"""Flow expressions read the related record's values (`work_order.title`), which type-check at
publish: a condition and a set_fields over them see the values as stored, not blanks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tests.engine.flows.conftest import FlowKit

Kit = Callable[[Mapping[str, str]], FlowKit]

COPY = """
key: copy
label: Copy from the work order
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: check
    type: condition
    branches:
      - {key: done, expr: work_order.done = TRUE, to: copy_title}
      - {key: other, default: true, to: mark}
  - key: copy_title
    type: action
    actions: [{type: set_fields, values: {note: 'CONCAT("wo: ", work_order.title)'}}]
  - key: mark
    type: action
    actions: [{type: set_fields, values: {note: '"not done"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: check}
  - {from: copy_title, to: end}
  - {from: mark, to: end}
"""


def test_conditions_and_actions_read_related_values(flow_kit: Kit) -> None:
    kit = flow_kit({"copy": COPY})
    done = kit.create("work_order", title="Replace valve", done=True)
    open_ = kit.create("work_order", title="Inspect", done=False)
    first = kit.create(subject="a", work_order=done.id)
    second = kit.create(subject="b", work_order=open_.id)
    third = kit.create(subject="c")  # no work order: the path is blank
    assert kit.get(first.id).values["note"] == "wo: Replace valve"
    assert kit.get(second.id).values["note"] == "not done"
    assert kit.get(third.id).values["note"] == "not done"

"""Static checks and compiling, without a database: every problem at once, with its path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from engine.errors import DefinitionError
from engine.expr import ExprType
from engine.flows.checks import FlowContext, check_flow
from engine.flows.compiler import compile_flow
from engine.flows.spec import FlowSpec

CATALOG = {
    "status": ExprType.TEXT,
    "priority": ExprType.NUMBER,
    "due": ExprType.DATETIME,
    "handler": ExprType.NUMBER,
    "$now": ExprType.DATETIME,
    "$initiator": ExprType.NUMBER,
}


def spec(text: str, **changes: Any) -> FlowSpec:
    data = yaml.safe_load(text)
    data.update(changes)
    return FlowSpec.model_validate(data)


def problems(flow: FlowSpec, **ctx: Any) -> set[tuple[str, str]]:
    found, _texts = check_flow(flow, FlowContext(catalog=CATALOG, **ctx))
    return {(p.code, p.path) for p in found}


GOOD = """
key: good
label: Good
form: ticket
trigger: {type: record_created, condition: priority > 1}
nodes:
  - {key: start, type: start}
  - key: route
    type: condition
    branches:
      - {key: hot, expr: priority >= 3, to: split}
      - {key: cold, default: true, to: end}
  - {key: split, type: parallel_split}
  - {key: a, type: user_task, assignees: [{type: role, value: agent}], if_empty: fail}
  - {key: b, type: timer, until: due}
  - {key: join, type: join}
  - key: act
    type: action
    actions: [{type: set_fields, values: {status: '"open"', handler: $initiator}}]
  - {key: end, type: end}
edges:
  - {from: start, to: route}
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: join}
  - {from: b, to: join}
  - {from: join, to: act}
  - {from: act, to: end}
"""


def test_a_good_flow_compiles_and_indexes_its_ways_out() -> None:
    compiled = compile_flow(
        spec(GOOD), ctx=FlowContext(catalog=CATALOG, roles=frozenset({"agent"}))
    )
    assert compiled.start == "start"
    assert [e.to for e in compiled.outgoing["split"]] == ["a", "b"]
    assert [(e.branch, e.default) for e in compiled.outgoing["route"]] == [
        ("hot", False),
        ("cold", True),
    ]
    assert compiled.join_needs(compiled.nodes["join"]) == 2  # type: ignore[arg-type]
    assert compiled.upstream["join"] >= {"a", "b", "split", "start"}
    assert "/nodes/1/branches/0/expr" in compiled.expressions


def test_graph_problems_are_all_reported_with_paths() -> None:
    data = yaml.safe_load(GOOD)
    data["nodes"][1]["branches"][1]["default"] = False  # no default branch, no expr
    data["nodes"].append({"key": "orphan", "type": "end"})
    data["nodes"].append({"key": "stuck", "type": "parallel_split"})
    data["edges"].append({"from": "ghost", "to": "end"})
    data["edges"].append({"from": "act", "to": "nowhere"})
    data["edges"].append({"from": "route", "to": "stuck"})
    found = problems(FlowSpec.model_validate(data))
    assert found == {
        ("flow.branch-without-expr", "/nodes/1/branches/1"),
        ("flow.no-default-branch", "/nodes/1/branches"),
        ("flow.unknown-node", "/edges/7/from"),
        ("flow.unknown-node", "/edges/8/to"),
    }
    del data["edges"][7:9]
    found = problems(FlowSpec.model_validate(data))
    assert ("flow.unreachable", "/nodes/8") in found
    assert ("flow.dead-end", "/nodes/9") in found


def test_joins_that_cannot_complete() -> None:
    data = yaml.safe_load(GOOD)
    data["nodes"][5] = {"key": "join", "type": "join", "mode": "count", "count": 3}
    assert ("flow.join-impossible", "/nodes/5") in problems(FlowSpec.model_validate(data))
    # fed from the two branches of a condition: only one ever arrives
    exclusive = yaml.safe_load(GOOD)
    exclusive["nodes"][1]["branches"] = [
        {"key": "hot", "expr": "priority >= 3", "to": "a"},
        {"key": "cold", "default": True, "to": "b"},
    ]
    exclusive["edges"] = [e for e in exclusive["edges"] if e["from"] != "split"]
    exclusive["nodes"] = [n for n in exclusive["nodes"] if n["key"] != "split"]
    assert problems(FlowSpec.model_validate(exclusive)) == {("flow.join-impossible", "/nodes/4")}
    exclusive["nodes"][4]["mode"] = "any"
    assert problems(FlowSpec.model_validate(exclusive)) == set()


def test_expression_and_name_problems() -> None:
    data = yaml.safe_load(GOOD)
    data["trigger"]["condition"] = "priority + 1"  # not a condition
    data["nodes"][1]["branches"][0]["expr"] = "prio >= 3"  # unknown field
    data["nodes"][4]["until"] = "status"  # not a date
    data["nodes"][6]["actions"][0]["values"] = {"status": "1", "colour": '"red"'}
    data["nodes"][3]["assignees"] = [{"type": "role", "value": "agnet"}]
    data["nodes"].insert(7, {"key": "sub", "type": "subflow", "flow": "missing"})
    data["nodes"][3]["on_claim"] = {"handler": "$initiator", "owner_name": '"x"', "status": "1"}
    found = problems(
        FlowSpec.model_validate(data), roles=frozenset({"agent"}), flows=frozenset({"good"})
    )
    assert found == {
        ("flow.expression-type", "/trigger/condition"),
        ("expr.unknown-field", "/nodes/1/branches/0/expr"),
        ("flow.expression-type", "/nodes/4/until"),
        ("flow.expression-type", "/nodes/6/actions/0/values/status"),
        ("flow.unknown-field", "/nodes/6/actions/0/values/colour"),
        ("flow.unknown-field", "/nodes/3/on_claim/owner_name"),
        ("flow.expression-type", "/nodes/3/on_claim/status"),
        ("flow.no-assignee", "/nodes/3/assignees/0/value"),
        ("flow.unknown-flow", "/nodes/7/flow"),
        ("flow.unreachable", "/nodes/7"),
    }


def test_an_unknown_role_with_an_admin_fallback_is_not_a_problem() -> None:
    data = yaml.safe_load(GOOD)
    data["nodes"][3] = {
        "key": "a",
        "type": "user_task",
        "assignees": [{"type": "role", "value": "x"}],
    }
    assert problems(FlowSpec.model_validate(data), roles=frozenset({"agent"})) == set()


def test_compile_raises_every_problem_at_once() -> None:
    data = yaml.safe_load(GOOD)
    data["edges"].append({"from": "ghost", "to": "end"})
    data["nodes"][1]["branches"][0]["expr"] = "prio >= 3"
    with pytest.raises(DefinitionError) as err:
        compile_flow(FlowSpec.model_validate(data), ctx=FlowContext(catalog=CATALOG))
    assert {p.code for p in err.value.problems} == {"flow.unknown-node", "expr.unknown-field"}

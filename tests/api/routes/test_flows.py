"""Flow routes end to end: record triggers through the records API, manual start, instance
detail and timeline, terminate and retry, inbound hooks, simulation of a draft."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.engine.flows.conftest import write_bundle

API = "/api/v1"
MANUAL = """
key: review
label: Review
form: ticket
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - key: check
    type: user_task
    assignees: [{type: user, value: tester}]
    timeout: {after: PT8H}
  - key: done
    type: action
    actions: [{type: set_fields, values: {note: '"reviewed"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: check}
  - {from: check, to: done}
  - {from: done, to: end}
"""
ON_CREATE = """
key: intake
label: Intake
form: ticket
trigger: {type: record_created, condition: priority >= 3}
nodes:
  - {key: start, type: start}
  - key: flag
    type: action
    actions: [{type: set_fields, values: {status: '"open"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: flag}
  - {from: flag, to: end}
"""
HOOK = """
key: hooked
label: Hooked
trigger: {type: webhook}
nodes:
  - {key: start, type: start}
  - {key: end, type: end}
edges:
  - {from: start, to: end}
"""


@pytest.fixture
def flow_app(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> Iterator[str]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = write_bundle(
        tmp_path / "bundle", {"review": MANUAL, "intake": ON_CREATE, "hooked": HOOK}
    )
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    yield "fl"
    use_environment(None)


def _ticket(client: TestClient, **values: object) -> dict[str, object]:
    response = client.post(f"{API}/apps/fl/forms/ticket/records", json={"subject": "s", **values})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_record_created_through_the_api_starts_the_flow(client: TestClient, flow_app: str) -> None:
    low = _ticket(client, priority=1)
    high = _ticket(client, priority=5)
    listed = client.get(f"{API}/apps/fl/flow-instances", params={"flow": "intake"}).json()
    assert [i["record_id"] for i in listed["items"]] == [high["id"]]
    assert listed["items"][0]["status"] == "completed"
    record = client.get(f"{API}/apps/fl/forms/ticket/records/{high['id']}").json()
    assert record["status"] == "open"
    timeline = client.get(f"{API}/apps/fl/forms/ticket/records/{low['id']}/timeline").json()
    assert timeline == {"instances": [], "steps": []}


def test_manual_start_detail_timeline_and_terminate(client: TestClient, flow_app: str) -> None:
    ticket = _ticket(client)
    started = client.post(f"{API}/apps/fl/flows/review/instances", json={"record_id": ticket["id"]})
    assert started.status_code == 201, started.text
    instance = started.json()
    assert instance["status"] == "running"
    detail = client.get(f"{API}/flow-instances/{instance['id']}").json()
    assert [t["node"] for t in detail["tokens"] if t["status"] == "waiting"] == ["check"]
    events = [(s["node"], s["event"]) for s in detail["history"]]
    assert ("check", "tasks_opened") in events
    timeline = client.get(f"{API}/apps/fl/forms/ticket/records/{ticket['id']}/timeline").json()
    assert [i["flow"] for i in timeline["instances"]] == ["review"]
    ended = client.post(f"{API}/flow-instances/{instance['id']}/terminate", json={"reason": "dup"})
    assert ended.json()["status"] == "terminated"
    again = client.post(f"{API}/flow-instances/{instance['id']}/terminate", json={})
    assert (again.status_code, again.json()["code"]) == (409, "flow.not-running")
    retry = client.post(f"{API}/flow-instances/{instance['id']}/retry")
    assert retry.status_code == 409


def test_manual_start_refuses_other_triggers_and_unknown_flows(
    client: TestClient, flow_app: str
) -> None:
    other = client.post(f"{API}/apps/fl/flows/intake/instances", json={})
    assert (other.status_code, other.json()["code"]) == (409, "flow.not-manual")
    missing = client.post(f"{API}/apps/fl/flows/nope/instances", json={})
    assert (missing.status_code, missing.json()["code"]) == (404, "flow.not-found")


def test_non_admins_cannot_list_or_terminate(
    client: TestClient, flow_app: str, make_user: Callable[..., Any], migrated_engine: sa.Engine
) -> None:
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token
    from engine.storage.uow import UnitOfWork

    user = make_user("viewer")
    with UnitOfWork(migrated_engine) as uow:
        token = create_token(uow=uow, actor=load_actor(uow=uow, user_id=user.id), name="t")
        uow.commit()
    client.headers["Authorization"] = f"Bearer {token.token}"
    assert client.get(f"{API}/apps/fl/flow-instances").status_code == 403
    assert client.post(f"{API}/flow-instances/1/retry").status_code == 403


def test_inbound_hook_needs_the_secret(client: TestClient, flow_app: str) -> None:
    url = f"{API}/hooks/fl/hooked"
    assert client.post(url, json={"x": 1}).status_code == 403
    created = client.post(f"{API}/apps/fl/flows/hooked/hook-secret")
    assert created.status_code == 201
    secret = created.json()["secret"]
    anonymous = {"X-Tangram-Hook-Secret": secret}
    client.headers.pop("Authorization")
    wrong = client.post(url, json={"x": 1}, headers={"X-Tangram-Hook-Secret": "nope"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "flow.bad-hook-secret")
    started = client.post(url, json={"x": 1}, headers=anonymous)
    assert started.status_code == 202, started.text
    assert started.json()["variables"] == {"x": 1}
    assert started.json()["status"] == "completed"


def test_simulate_a_draft_shows_path_tasks_assignees_and_deadlines(
    client: TestClient, flow_app: str
) -> None:
    import yaml

    draft = yaml.safe_load(MANUAL)
    draft["nodes"].insert(3, {"key": "cool", "type": "timer", "delay": "PT2H"})
    draft["edges"] = [
        {"from": "start", "to": "check"},
        {"from": "check", "to": "cool", "outcome": "approved"},
        {"from": "check", "to": "end", "outcome": "rejected"},
        {"from": "cool", "to": "done"},
        {"from": "done", "to": "end"},
    ]
    body = {"definition": draft, "record": {"subject": "sim"}, "at": "2026-11-23T09:00:00Z"}
    response = client.post(f"{API}/apps/fl/flows/review/simulate", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["instance"]["status"] == "completed"
    entered = [s["node"] for s in report["path"] if s["event"] == "entered"]
    assert entered == ["start", "check", "cool", "done", "end"]
    [task] = report["tasks"]
    assert [a["username"] for a in task["assignees"]] == ["tester"]
    assert task["due_at"].startswith("2026-11-23T17:00:00")
    assert report["deadlines"] == [
        {"node": "cool", "type": "timer", "due_at": "2026-11-23T11:00:00+00:00"}
    ]
    assert report["record"]["note"] == "reviewed"
    # nothing was kept: no instance, no record, the published version unchanged
    assert client.get(f"{API}/apps/fl/flow-instances").json()["items"] == []
    rejected = client.post(
        f"{API}/apps/fl/flows/review/simulate", json={**body, "outcomes": {"check": "rejected"}}
    ).json()
    assert [s["node"] for s in rejected["path"] if s["event"] == "entered"][-1] == "end"
    assert rejected["record"]["note"] is None


def test_simulate_reports_every_problem_of_a_bad_draft(client: TestClient, flow_app: str) -> None:
    import yaml

    draft = yaml.safe_load(MANUAL)
    draft["edges"].append({"from": "ghost", "to": "end"})
    draft["nodes"][2]["actions"][0]["values"] = {"nope": "1", "priority": '"text"'}
    response = client.post(f"{API}/apps/fl/flows/review/simulate", json={"definition": draft})
    assert response.status_code == 422
    problems = {(p["code"], p["path"]) for p in response.json()["problems"]}
    assert problems == {
        ("flow.unknown-node", "/edges/3/from"),
        ("flow.unknown-field", "/nodes/2/actions/0/values/nope"),
        ("flow.expression-type", "/nodes/2/actions/0/values/priority"),
    }

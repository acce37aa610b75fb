"""The tasks API: inbox boxes and counts, task detail masked by the node, operations with their
error codes (403 not yours, 409 already done, 422 refused values), batch approve, and user
attributes (admins only). Records are created through the API, so flows start by trigger."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from engine.identity.accounts import grant_role
from engine.identity.service import load_actor
from engine.identity.tokens import create_token
from engine.storage.uow import UnitOfWork
from tests.engine.flows.conftest import write_bundle

FLOW = """
key: review
label: Review
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: check
    type: user_task
    kind: approve
    mode: all
    assignees: [{type: user, value: 'ann,bob'}]
    field_permissions: {note: required, subject: hidden}
  - key: notice
    type: user_task
    kind: cc
    assignees: [{type: user, value: cid}]
  - key: desk
    type: user_task
    kind: handle
    assignees: [{type: pool, value: 'department:desk'}]
  - {key: done, type: end}
  - {key: rejected, type: end}
edges:
  - {from: start, to: check}
  - {from: check, to: notice, outcome: approved}
  - {from: check, to: rejected, outcome: rejected}
  - {from: notice, to: desk}
  - {from: desk, to: done}
"""
TICKETS = "/api/v1/apps/fl/forms/ticket/records"
# Approvers may read and update tickets (the node then narrows what a task shows and accepts).
ROLE = """
key: approver
label: Approver
permissions:
  - {form: ticket, actions: [read, update], scope: all}
"""


class Api:
    """The test client acting as one user or another (bearer tokens)."""

    def __init__(self, client: TestClient, tokens: dict[str, str], users: dict[str, int]):
        self.client = client
        self.tokens = tokens
        self.users = users

    def get(self, who: str, url: str) -> Any:
        return self.client.get(url, headers=self._auth(who))

    def post(self, who: str, url: str, body: Any = None) -> Any:
        return self.client.post(url, json=body or {}, headers=self._auth(who))

    def put(self, who: str, url: str, body: Any) -> Any:
        return self.client.put(url, json=body, headers=self._auth(who))

    def mine(self, who: str, box: str = "mine") -> list[dict[str, Any]]:
        response = self.get(who, f"/api/v1/tasks?box={box}")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def _auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def api(
    client: TestClient,
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> Iterator[Api]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = write_bundle(tmp_path / "b", {"review": FLOW})
    (folder / "roles").mkdir()
    (folder / "roles" / "approver.yaml").write_text(ROLE.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    users: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with uow_factory() as uow:
        tester = uow.users.get_by_username(username="tester")
        users["tester"] = tester.id
        desk = uow.departments.create(key="desk", name="Desk")
        for name in ("ann", "bob", "cid", "dan"):
            users[name] = uow.users.create(username=name, display_name=name.title()).id
        for name in ("cid", "dan"):
            uow.departments.add_member(department_id=desk.id, user_id=users[name])
        for name in ("ann", "bob"):
            grant_role(uow=uow, actor=None, app="fl", role="approver", user_id=users[name])
        for name, user_id in users.items():
            actor = load_actor(uow=uow, user_id=user_id)
            tokens[name] = create_token(uow=uow, actor=actor, name="tests").token
        uow.commit()
    use_environment(None)
    yield Api(client, tokens, users)
    use_environment(None)


def test_approval_through_the_api(api: Api) -> None:
    created = api.post("tester", TICKETS, {"subject": "secret printer"})
    assert created.status_code == 201, created.text
    [ann_task] = api.mine("ann")
    assert (ann_task["node_key"], ann_task["record_id"]) == ("check", created.json()["id"])
    counts = api.get("ann", "/api/v1/tasks").json()["counts"]
    assert counts["mine"] == 1 and counts["done"] == 0

    detail = api.get("ann", f"/api/v1/tasks/{ann_task['id']}")
    assert detail.status_code == 200
    assert "subject" not in detail.json()["record"]  # hidden by the node
    assert api.get("cid", f"/api/v1/tasks/{ann_task['id']}").status_code == 403

    url = f"/api/v1/tasks/{ann_task['id']}/approve"
    not_yours = api.post("bob", url)
    assert (not_yours.status_code, not_yours.json()["code"]) == (403, "task.not-yours")
    refused = api.post("ann", url, {"values": {"subject": "x"}})
    assert refused.status_code == 422
    assert [(e["path"], e["code"]) for e in refused.json()["errors"]] == [
        ("subject", "task.field-not-editable")
    ]
    missing = api.post("ann", url, {"values": {}})
    assert [(e["path"], e["code"]) for e in missing.json()["errors"]] == [
        ("note", "task.field-required")
    ]
    ok = api.post("ann", url, {"values": {"note": "seen"}, "comment": "fine"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["node_outcome"] is None  # mode all: bob still has to approve
    again = api.post("ann", url, {"values": {"note": "seen"}})
    assert (again.status_code, again.json()["code"]) == (409, "task.already-done")
    assert [t["id"] for t in api.mine("ann", "done")] == [ann_task["id"]]

    [bob_task] = api.mine("bob")
    approved = api.post("bob", f"/api/v1/tasks/{bob_task['id']}/approve")
    assert approved.json()["node_outcome"] == "approved"
    [cc] = api.mine("cid", "cc")
    assert cc["node_key"] == "notice"
    assert api.get("cid", "/api/v1/tasks").json()["counts"]["cc_unread"] == 1
    api.get("cid", f"/api/v1/tasks/{cc['id']}")
    assert api.get("cid", "/api/v1/tasks").json()["counts"]["cc_unread"] == 0

    [pooled] = api.mine("dan", "pool")
    assert [t["id"] for t in api.mine("cid", "pool")] == [pooled["id"]]
    claimed = api.post("dan", f"/api/v1/tasks/{pooled['id']}/claim")
    assert claimed.status_code == 200
    late = api.post("cid", f"/api/v1/tasks/{pooled['id']}/claim")
    assert (late.status_code, late.json()["code"]) == (409, "task.already-claimed")
    assert api.mine("cid", "pool") == []
    done = api.post("dan", f"/api/v1/tasks/{pooled['id']}/complete")
    assert done.json()["node_outcome"] == "done"


def test_batch_approve_and_operations(api: Api) -> None:
    for subject in ("one", "two"):
        api.post("tester", TICKETS, {"subject": subject})
    first, second = sorted(t["id"] for t in api.mine("ann"))
    moved = api.post("ann", f"/api/v1/tasks/{second}/transfer", {"user_id": api.users["dan"]})
    assert moved.status_code == 200
    report = api.post("ann", "/api/v1/tasks/batch-approve", {"task_ids": [first, second]})
    assert report.status_code == 200
    assert [(i["task_id"], i["ok"], i.get("code")) for i in report.json()["items"]] == [
        (first, False, "submission.invalid"),  # note is required at this step
        (second, False, "task.not-yours"),
    ]
    commented = api.post("dan", f"/api/v1/tasks/{second}/comment", {"body": "on it"})
    assert commented.status_code == 200
    actions = [a["action"] for a in api.get("dan", f"/api/v1/tasks/{second}").json()["actions"]]
    assert actions == ["opened", "transferred", "comment"]
    bad = api.post("dan", f"/api/v1/tasks/{second}/return", {"target": "desk"})
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (422, "task.bad-target")
    assert api.get("ann", "/api/v1/tasks/999999").status_code == 404


def test_user_attributes_are_for_admins(api: Api) -> None:
    url = f"/api/v1/org/users/{api.users['ann']}/attributes"
    body = {"attributes": {"skills": {"printer": 3}, "regions": ["east"]}}
    assert api.put("ann", url, body).status_code == 403
    saved = api.put("tester", url, body)
    assert saved.status_code == 200
    assert api.get("tester", url).json()["attributes"] == body["attributes"]
    bad = api.put("tester", url, {"attributes": {"regions": "east"}})
    assert (bad.status_code, bad.json()["errors"][0]["path"]) == (422, "regions")
    assert api.put("tester", "/api/v1/org/users/999999/attributes", body).status_code == 404


def test_signer_delegate_reject_and_withdraw_routes(api: Api) -> None:
    api.post("tester", TICKETS, {"subject": "one"})
    [ann_task] = api.mine("ann")
    url = f"/api/v1/tasks/{ann_task['id']}"
    bad = api.post("ann", url + "/add-signer", {"user_ids": [], "position": "before"})
    assert bad.status_code == 422  # request shape: at least one signer
    added = api.post(
        "ann", url + "/add-signer", {"user_ids": [api.users["dan"]], "position": "before"}
    )
    assert added.status_code == 200, added.text
    [signer] = added.json()["task_ids"]
    assert [t["id"] for t in api.mine("dan")] == [signer]
    delegated = api.post("dan", f"/api/v1/tasks/{signer}/delegate", {"user_id": api.users["cid"]})
    assert delegated.status_code == 200
    assert api.post("cid", f"/api/v1/tasks/{signer}/approve").json()["status"] == "open"
    rejected = api.post("dan", f"/api/v1/tasks/{signer}/reject", {"comment": "no"})
    assert rejected.json()["node_outcome"] == "rejected"

    api.post("tester", TICKETS, {"subject": "two"})
    [fresh] = api.mine("bob")
    withdrawn = api.post("tester", f"/api/v1/tasks/{fresh['id']}/withdraw", {"comment": "oops"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["goto"] == "start"
    assert len(api.mine("bob")) == 1  # the flow ran again from the start: a new task
    assert api.mine("bob")[0]["id"] != fresh["id"]

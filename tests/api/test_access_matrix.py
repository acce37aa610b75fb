"""The access matrix: what an admin, a department agent and an engineer may see and change.

Every record path over HTTP (get, list, count, search, kanban, history, comments, export,
import, bulk update and delete, create, update, delete, relation pickers and relation writes),
on SQLite and PostgreSQL. Out of scope looks like missing (404); hidden fields never show, and
cannot be filtered or sorted on. Attachment downloads have their own matrix
(tests/api/routes/test_record_files.py), pickers a fuller one (tests/api/routes/test_pickers.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.storage.uow import UnitOfWork

BASE = "/api/v1/apps/acl/forms/ticket/records"

BUNDLE = {
    "bundle.yaml": 'key: acl\nname: Access\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n',
    "forms/ticket.yaml": """
key: ticket
label: Ticket
title_field: subject
fields:
  - {key: subject, type: text, label: Subject, required: true}
  - key: status
    type: select
    label: Status
    options: [{key: open, label: Open}, {key: closed, label: Closed}]
    default: open
  - {key: assignee, type: user, label: Assignee}
  - {key: cost, type: number, label: Cost, decimals: 2}
""",
    "forms/visit.yaml": """
key: visit
label: Visit
fields:
  - {key: note, type: text, label: Note}
  - key: kind
    type: select
    label: Kind
    options: [{key: onsite, label: Onsite}, {key: remote, label: Remote}]
    default: onsite
  - {key: ticket, type: relation, form: ticket, label: Ticket}
  - {key: ticket_subject, type: lookup, label: Ticket subject, relation: ticket, field: subject}
  - {key: ticket_cost, type: lookup, label: Ticket cost, relation: ticket, field: cost}
  - key: also
    type: subform
    label: Also concerns
    fields:
      - {key: other, type: relation, form: ticket, label: Other ticket}
      - {key: other_cost, type: lookup, label: Other cost, relation: other, field: cost}
""",
    "roles/agent.yaml": """
key: agent
label: Agent
permissions:
  - form: ticket
    actions: [create, read, update, delete, import, export]
    scope: department
  - {form: visit, actions: [create, read, update, import, export], scope: department}
""",
    "roles/viewer.yaml": """
key: viewer
label: Viewer
permissions:
  - {form: ticket, actions: [read], scope: all}
  - {form: visit, actions: [read], scope: all}
""",
    "roles/engineer.yaml": """
key: engineer
label: Engineer
permissions:
  - form: ticket
    actions: [create, read, update, import]
    scope: own
    fields: {cost: hidden}
  - form: ticket
    actions: [read, update, export]
    scope: assigned
    fields: {cost: hidden}
  - {form: visit, actions: [create, read, update], scope: own}
  - {form: visit, actions: [read, export], scope: all}
""",
}


@dataclass
class World:
    api: TestClient
    tokens: dict[str, str]
    users: dict[str, int]
    tickets: dict[str, int]

    def call(self, who: str, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.api.request(method, url, headers=headers, **kwargs)

    def ids(self, who: str, **params: Any) -> set[int]:
        response = self.call(who, "GET", BASE, params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}


@pytest.fixture
def world(
    anonymous_client: TestClient,
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> World:
    from engine.bundles import load_bundle
    from engine.identity.accounts import create_department, create_user, grant_role, set_membership
    from engine.identity.passwords import PasswordPolicy
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token
    from engine.installer import import_bundle

    folder = tmp_path / "acl"
    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    people = {
        "admin": (None, None),
        "agent": ("support", "agent"),
        "agent2": ("support", "agent"),
        "outsider": ("sales", "agent"),
        "engineer": (None, "engineer"),
        "viewer": (None, "viewer"),
    }
    users: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with uow_factory() as uow:
        departments = {
            key: create_department(uow=uow, actor=None, key=key, name=key.title()).id
            for key in ("support", "sales")
        }
        for name, (department, role) in people.items():
            user = create_user(
                uow=uow, actor=None, username=name, display_name=name, policy=PasswordPolicy()
            )
            users[name] = user.id
            if department is not None:
                set_membership(
                    uow=uow,
                    actor=None,
                    department_id=departments[department],
                    user_id=user.id,
                    member=True,
                )
            if role is None:
                grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user.id)
            else:
                grant_role(uow=uow, actor=None, app="acl", role=role, user_id=user.id)
        for name, user_id in users.items():
            actor = load_actor(uow=uow, user_id=user_id)
            tokens[name] = create_token(uow=uow, actor=actor, name="matrix").token
        uow.commit()
    made = World(anonymous_client, tokens, users, {})
    engineer = users["engineer"]
    plan = {
        "t1": ("agent", {"subject": "agent one", "cost": 10}),
        "t2": ("outsider", {"subject": "sales two", "cost": 20}),
        "t3": ("admin", {"subject": "assigned three", "cost": 30, "assignee": engineer}),
        "t4": ("engineer", {"subject": "engineer four"}),
        "t5": ("admin", {"subject": "secret five", "cost": 50}),
        "t6": ("agent2", {"subject": "agent six", "cost": 60}),
    }
    for key, (who, data) in plan.items():
        response = made.call(who, "POST", BASE, json=data)
        assert response.status_code == 201, response.text
        made.tickets[key] = response.json()["id"]
    return made


def _t(world: World, *keys: str) -> set[int]:
    return {world.tickets[key] for key in keys}


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


# --- reading ---------------------------------------------------------------------------------


def test_lists_and_counts_show_each_actor_their_scope(world: World) -> None:
    assert world.ids("admin") == _t(world, "t1", "t2", "t3", "t4", "t5", "t6")
    assert world.ids("agent") == _t(world, "t1", "t6")
    assert world.ids("outsider") == _t(world, "t2")
    assert world.ids("engineer") == _t(world, "t3", "t4")
    for who, expected in (("admin", 6), ("agent", 2), ("engineer", 2)):
        counted = world.call(who, "GET", BASE + "/count").json()
        assert counted == {"value": expected, "exact": True}
        page = world.call(who, "GET", BASE).json()
        assert page["count"]["value"] == expected


def test_hidden_fields_never_show_in_records(world: World) -> None:
    for item in world.call("engineer", "GET", BASE).json()["items"]:
        assert "cost" not in item and "subject" in item
    got = world.call("engineer", "GET", f"{BASE}/{world.tickets['t3']}")
    assert got.status_code == 200 and "cost" not in got.json()
    assert got.json()["assignee"] == world.users["engineer"]
    admin = world.call("admin", "GET", f"{BASE}/{world.tickets['t3']}").json()
    assert admin["cost"] == 30
    agent = world.call("agent", "GET", BASE).json()["items"]
    assert {item["cost"] for item in agent} == {10, 60}


def test_out_of_scope_ids_look_missing(world: World) -> None:
    missing = max(world.tickets.values()) + 1000
    for who, key in (("agent", "t2"), ("agent", "t5"), ("engineer", "t5"), ("engineer", "t1")):
        record = world.tickets[key]
        for path in ("", "/history", "/comments"):
            _problem(world.call(who, "GET", f"{BASE}/{record}{path}"), 404, "record.not-found")
        _problem(
            world.call(who, "POST", f"{BASE}/{record}/comments", json={"body": "hi"}),
            404,
            "record.not-found",
        )
    _problem(world.call("agent", "GET", f"{BASE}/{missing}"), 404, "record.not-found")
    _problem(
        world.call("agent", "GET", f"{BASE}/{world.tickets['t2']}", params={"include_deleted": 1}),
        404,
        "record.not-found",
    )


def test_search_and_kanban_stay_in_scope(world: World) -> None:
    assert world.ids("engineer", q="secret") == set()
    assert world.ids("admin", q="secret") == _t(world, "t5")
    assert world.ids("agent", q="agent") == _t(world, "t1", "t6")
    board = world.call("engineer", "GET", BASE + "/kanban", params={"field": "status"})
    assert board.status_code == 200, board.text
    columns = {c["value"]: c for c in board.json()["columns"]}
    assert columns["open"]["count"] == 2
    assert {i["id"] for i in columns["open"]["items"]} == _t(world, "t3", "t4")
    assert all("cost" not in i for i in columns["open"]["items"])


def test_filter_sort_and_group_on_hidden_fields_are_refused(world: World) -> None:
    by_cost = json.dumps({"field": "cost", "op": "gt", "value": 25})
    hidden = "identity.hidden-field"
    for path, extra in (("", {}), ("/count", {}), ("/kanban", {"field": "status"})):
        for params in ({"filter": by_cost}, {"filter_expr": "cost > 25"}):
            response = world.call("engineer", "GET", BASE + path, params={**params, **extra})
            _problem(response, 403, hidden)
    _problem(world.call("engineer", "GET", BASE, params={"sort": "-cost"}), 403, hidden)
    _problem(world.call("engineer", "GET", BASE + "/kanban", params={"field": "cost"}), 403, hidden)
    # The same requests work for who may see the field, so the refusal is about visibility.
    assert world.ids("agent", filter=by_cost) == _t(world, "t6")
    assert world.call("agent", "GET", BASE, params={"sort": "-cost"}).status_code == 200


def test_history_drops_changes_of_hidden_fields(world: World) -> None:
    t3 = world.tickets["t3"]
    changed = world.call("admin", "PATCH", f"{BASE}/{t3}", json={"cost": 31, "version": 1})
    assert changed.status_code == 200, changed.text
    admin = world.call("admin", "GET", f"{BASE}/{t3}/history").json()["items"]
    assert [sorted(entry["changes"]) for entry in admin][-1] == ["cost"]
    engineer = world.call("engineer", "GET", f"{BASE}/{t3}/history").json()["items"]
    assert len(engineer) == len(admin)
    assert all("cost" not in entry["changes"] for entry in engineer)
    assert "subject" in engineer[0]["changes"]


def test_comments_on_records_in_scope(world: World) -> None:
    t1 = world.tickets["t1"]
    added = world.call("agent", "POST", f"{BASE}/{t1}/comments", json={"body": "on it"})
    assert added.status_code == 201, added.text
    listed = world.call("agent2", "GET", f"{BASE}/{t1}/comments").json()["items"]
    assert [c["body"] for c in listed] == ["on it"]


# --- export and import -----------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_export_holds_only_visible_records_and_fields(world: World) -> None:
    rows = _csv(world.call("engineer", "GET", BASE + "/export"))
    assert rows[0] == ["Subject", "Status", "Assignee"]
    assert sorted(row[0] for row in rows[1:]) == ["assigned three", "engineer four"]
    keyed = _csv(world.call("engineer", "GET", BASE + "/export", params={"keys": 1}))
    assert keyed[1] == ["subject", "status", "assignee"]
    agent = _csv(world.call("agent", "GET", BASE + "/export"))
    assert agent[0] == ["Subject", "Status", "Assignee", "Cost"]
    assert sorted(row[0] for row in agent[1:]) == ["agent one", "agent six"]
    assert len(_csv(world.call("admin", "GET", BASE + "/export"))) == 7
    outsider = world.call("outsider", "GET", "/api/v1/apps/acl/forms/ticket/records/export")
    assert outsider.status_code == 200  # the agent role exports; scope keeps it to sales


def _import(world: World, who: str, text: str) -> Any:
    files = {"file": ("tickets.csv", text.encode())}
    return world.call(who, "POST", "/api/v1/apps/acl/forms/ticket/imports", files=files)


def test_import_needs_the_permission_and_editable_columns(world: World) -> None:
    done = _import(world, "agent", "Subject,Cost\nimported,5\n")
    assert done.status_code == 202, done.text
    job = world.call("agent", "GET", f"/api/v1/apps/acl/forms/ticket/imports/{done.json()['id']}")
    assert job.status_code == 200 and job.json()["status"] == "done", job.text
    _problem(
        world.call("engineer", "GET", f"/api/v1/apps/acl/forms/ticket/imports/{done.json()['id']}"),
        404,
        "transfer.job-not-found",
    )
    assert len(world.ids("agent")) == 3  # the imported record belongs to the agent
    _problem(_import(world, "engineer", "Subject,Cost\nx,1\n"), 403, "identity.field-not-editable")
    ok = _import(world, "engineer", "Subject\nmine\n")
    assert ok.status_code == 202, ok.text
    assert len(world.ids("engineer")) == 3


def test_a_reader_can_only_read(world: World) -> None:
    denied = "identity.permission-denied"
    t1 = world.tickets["t1"]
    assert len(world.ids("viewer")) == 6
    _problem(world.call("viewer", "GET", BASE + "/export"), 403, denied)
    _problem(_import(world, "viewer", "Subject\nx\n"), 403, denied)
    _problem(world.call("viewer", "POST", BASE, json={"subject": "x"}), 403, denied)
    patch = world.call("viewer", "PATCH", f"{BASE}/{t1}", json={"status": "closed", "version": 1})
    assert patch.status_code == 403
    _problem(world.call("viewer", "DELETE", f"{BASE}/{t1}"), 403, denied)
    bulk = world.call("viewer", "POST", BASE + "/bulk-delete", json={"ids": [t1]})
    _problem(bulk, 403, denied)


# --- writing ---------------------------------------------------------------------------------


def test_create_sets_the_owner_and_refuses_hidden_fields(world: World) -> None:
    engineer = world.users["engineer"]
    _problem(
        world.call("engineer", "POST", BASE, json={"subject": "x", "cost": 1}),
        403,
        "identity.field-not-editable",
    )
    created = world.call("engineer", "POST", BASE, json={"subject": "new"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["owner_id"] == engineer and body["created_by"] == engineer
    assert "cost" not in body


def test_update_and_delete_respect_scope_and_actions(world: World) -> None:
    t = world.tickets
    ok = world.call("engineer", "PATCH", f"{BASE}/{t['t3']}", json={"subject": "s", "version": 1})
    assert ok.status_code == 200 and "cost" not in ok.json()
    _problem(
        world.call("engineer", "PATCH", f"{BASE}/{t['t3']}", json={"cost": 1, "version": 2}),
        403,
        "identity.field-not-editable",
    )
    for who, key in (("engineer", "t5"), ("agent", "t2")):
        patch = world.call(who, "PATCH", f"{BASE}/{t[key]}", json={"subject": "x", "version": 1})
        _problem(patch, 404, "record.not-found")
        _problem(world.call(who, "DELETE", f"{BASE}/{t[key]}"), 404, "record.not-found")
    # The engineer reads their own ticket but has no delete permission.
    _problem(
        world.call("engineer", "DELETE", f"{BASE}/{t['t4']}"), 403, "identity.permission-denied"
    )
    assert world.call("agent", "DELETE", f"{BASE}/{t['t6']}").status_code == 200
    restored = world.call("agent", "POST", f"{BASE}/{t['t6']}/restore")
    assert restored.status_code == 200, restored.text
    _problem(world.call("outsider", "POST", f"{BASE}/{t['t6']}/restore"), 404, "record.not-found")
    assert world.call("admin", "GET", f"{BASE}/{t['t2']}").json()["subject"] == "sales two"


def test_bulk_actions_are_all_or_nothing_with_out_of_scope_ids_not_found(world: World) -> None:
    t = world.tickets
    ids = [t["t1"], t["t2"], t["t6"]]
    update = world.call(
        "agent", "POST", BASE + "/bulk-update", json={"ids": ids, "changes": {"cost": 1}}
    )
    report = update.json()
    assert report["applied"] is False
    reasons = {item["id"]: item.get("reason") for item in report["items"]}
    assert reasons[t["t2"]] == "not-found"
    assert world.call("agent", "GET", f"{BASE}/{t['t1']}").json()["cost"] == 10
    delete = world.call("agent", "POST", BASE + "/bulk-delete", json={"ids": [t["t1"], t["t5"]]})
    assert delete.json()["applied"] is False
    assert world.ids("agent") == _t(world, "t1", "t6")
    mine = [t["t1"], t["t6"]]
    done = world.call(
        "agent", "POST", BASE + "/bulk-update", json={"ids": mine, "changes": {"cost": 2}}
    )
    assert done.status_code == 200 and done.json()["applied"] is True
    _problem(
        world.call(
            "engineer",
            "POST",
            BASE + "/bulk-update",
            json={"ids": [t["t3"]], "changes": {"cost": 1}},
        ),
        403,
        "identity.field-not-editable",
    )
    _problem(
        world.call("engineer", "POST", BASE + "/bulk-delete", json={"ids": [t["t4"]]}),
        403,
        "identity.permission-denied",
    )
    assert world.call("admin", "GET", f"{BASE}/{t['t2']}").json()["cost"] == 20


def test_schema_leaves_out_hidden_fields(world: World) -> None:
    schema = world.call("engineer", "GET", "/api/v1/apps/acl/forms/ticket/schema").json()
    assert "subject" in schema["properties"] and "cost" not in schema["properties"]
    admin = world.call("admin", "GET", "/api/v1/apps/acl/forms/ticket/schema").json()
    assert "cost" in admin["properties"]


def test_relation_pickers_and_writes_follow_the_target_scope(world: World) -> None:
    url = "/api/v1/apps/acl/forms/visit/fields/ticket/options"

    def picked(who: str, **params: Any) -> set[int]:
        response = world.call(who, "GET", url, params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert picked("admin") == _t(world, "t1", "t2", "t3", "t4", "t5", "t6")
    assert picked("agent") == _t(world, "t1", "t6")
    assert picked("outsider") == _t(world, "t2")
    assert picked("engineer") == _t(world, "t3", "t4")
    assert picked("engineer", q="secret") == set()
    visits = "/api/v1/apps/acl/forms/visit/records"
    for who, key in (("engineer", "t5"), ("agent", "t2")):
        refused = world.call(who, "POST", visits, json={"ticket": world.tickets[key]})
        _problem(refused, 422, "submission.invalid")
        assert refused.json()["errors"][0]["code"] == "record.missing-relation"
    for who, key in (("engineer", "t4"), ("agent", "t6"), ("admin", "t2")):
        made = world.call(who, "POST", visits, json={"ticket": world.tickets[key]})
        assert made.status_code == 201, made.text


def test_signed_out_and_definitions(world: World) -> None:
    world.api.headers.pop("Authorization", None)
    assert world.api.get(BASE).status_code == 401
    forms = world.call("agent", "GET", "/api/v1/apps/acl/forms")
    assert forms.status_code in (403, 404, 405)


# --- related records: lookups and subform relations ------------------------------------------

VISITS = "/api/v1/apps/acl/forms/visit/records"


def _visits(world: World) -> dict[str, int]:
    """One visit per ticket, created by someone whose ticket scope reaches it."""
    plan = {
        "v1": ("agent", "t1"),
        "v2": ("outsider", "t2"),
        "v3": ("admin", "t3"),
        "v5": ("admin", "t5"),
        "v6": ("agent2", "t6"),
    }
    made: dict[str, int] = {}
    for key, (who, ticket) in plan.items():
        body = {"note": key, "ticket": world.tickets[ticket]}
        response = world.call(who, "POST", VISITS, json=body)
        assert response.status_code == 201, response.text
        made[key] = response.json()["id"]
    return made


def _by_note(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["note"]: item for item in items}


def test_lookups_show_what_the_target_form_lets_each_actor_see(world: World) -> None:
    visits = _visits(world)
    admin = _by_note(world.call("admin", "GET", VISITS).json()["items"])
    assert admin["v5"]["ticket_subject"] == "secret five" and admin["v5"]["ticket_cost"] == 50
    viewer = _by_note(world.call("viewer", "GET", VISITS).json()["items"])
    assert (viewer["v1"]["ticket_subject"], viewer["v1"]["ticket_cost"]) == ("agent one", 10)
    # The engineer reads every visit, but tickets only in its own scope and never their cost:
    # the lookup of the hidden field is left out, those of other tickets are null; the
    # relation's id stays.
    engineer = world.call("engineer", "GET", VISITS).json()["items"]
    assert set(_by_note(engineer)) == {"v1", "v2", "v3", "v5", "v6"}
    assert all("ticket_cost" not in item for item in engineer)
    for item in engineer:
        if item["ticket"] != world.tickets["t3"]:
            assert item["ticket_subject"] is None, item
    # Lookups of related records in the actor's (restricted) scope show, checked in SQL.
    assert _by_note(engineer)["v3"]["ticket_subject"] == "assigned three"
    agent = _by_note(world.call("agent", "GET", VISITS).json()["items"])
    assert set(agent) == {"v1", "v6"}
    assert (agent["v1"]["ticket_subject"], agent["v1"]["ticket_cost"]) == ("agent one", 10)
    outsider = world.call("outsider", "GET", f"{VISITS}/{visits['v2']}").json()
    assert outsider["ticket_subject"] == "sales two"
    one = world.call("engineer", "GET", f"{VISITS}/{visits['v5']}").json()
    assert one["ticket"] == world.tickets["t5"]
    assert one["ticket_subject"] is None and "ticket_cost" not in one
    board = world.call("engineer", "GET", VISITS + "/kanban", params={"field": "kind"})
    assert board.status_code == 200, board.text
    cards = [card for column in board.json()["columns"] for card in column["items"]]
    assert len(cards) == 5 and all("ticket_cost" not in card for card in cards)
    assert sorted(map(str, (card["ticket_subject"] for card in cards))) == [
        "None",
        "None",
        "None",
        "None",
        "assigned three",
    ]


def test_lookups_of_hidden_or_out_of_scope_values_are_not_exported(world: World) -> None:
    _visits(world)
    rows = _csv(world.call("engineer", "GET", VISITS + "/export"))
    assert "Ticket cost" not in rows[0] and "Ticket subject" in rows[0]
    # (lookup cells are written as JSON values: "secret five" with its quotes)
    cells = {cell.strip('"') for row in rows[1:] for cell in row}
    assert not cells & {"secret five", "agent one", "sales two", "agent six", "50", "50.00"}
    assert "assigned three" in cells
    admin = _csv(world.call("admin", "GET", VISITS + "/export"))
    assert "Ticket cost" in admin[0] and "secret five" in {c.strip('"') for r in admin for c in r}


def test_filter_and_sort_through_lookups_reveal_nothing(world: World) -> None:
    _visits(world)
    hidden = "identity.hidden-field"
    by_subject = json.dumps({"field": "ticket_subject", "op": "eq", "value": "secret five"})
    refused = (
        {"sort": "-ticket_cost"},
        {"sort": "ticket_subject"},
        {"sort": "ticket.subject"},
        {"filter": by_subject},
        {"filter": json.dumps({"field": "ticket_cost", "op": "gt", "value": 25})},
        {"filter_expr": "ticket_cost > 25"},
        {"filter_expr": "ticket.cost > 25"},
        {"filter_expr": "ticket.subject = 'secret five'"},
    )
    for params in refused:
        paths = ("",) if "sort" in params else ("", "/count", "/kanban")
        for path in paths:
            extra = {"field": "kind"} if path == "/kanban" else {}
            response = world.call("engineer", "GET", VISITS + path, params={**params, **extra})
            _problem(response, 403, hidden)
    # A department agent reads only some tickets: ordering by their subject would rank the
    # others' subjects, so it is refused too; the viewer reads every ticket and may.
    _problem(world.call("agent", "GET", VISITS, params={"sort": "ticket_subject"}), 403, hidden)
    ranked = world.call("viewer", "GET", VISITS, params={"sort": "-ticket_cost"})
    assert ranked.status_code == 200, ranked.text
    assert [item["note"] for item in ranked.json()["items"]] == ["v6", "v5", "v3", "v2", "v1"]
    counted = world.call("viewer", "GET", VISITS + "/count", params={"filter": by_subject})
    assert counted.json()["value"] == 1
    # Sorting on the relation's own id column stays allowed: the id is shown anyway.
    assert world.call("engineer", "GET", VISITS, params={"sort": "ticket"}).status_code == 200


def test_subform_relations_must_stay_in_the_actor_scope(world: World) -> None:
    t = world.tickets
    refused = world.call(
        "engineer",
        "POST",
        VISITS,
        json={"note": "x", "also": [{"other": t["t4"]}, {"other": t["t5"]}]},
    )
    _problem(refused, 422, "submission.invalid")
    assert [(e["path"], e["code"]) for e in refused.json()["errors"]] == [
        ("also/1/other", "record.missing-relation")
    ]
    made = world.call("engineer", "POST", VISITS, json={"note": "y", "also": [{"other": t["t4"]}]})
    assert made.status_code == 201, made.text
    visits = _visits(world)
    v1 = world.call("agent", "GET", f"{VISITS}/{visits['v1']}").json()
    patch = world.call(
        "agent",
        "PATCH",
        f"{VISITS}/{visits['v1']}",
        json={"also": [{"other": t["t6"]}, {"other": t["t2"]}], "version": v1["version"]},
    )
    _problem(patch, 422, "submission.invalid")
    assert patch.json()["errors"][0]["path"] == "also/1/other"
    assert world.call("agent", "GET", f"{VISITS}/{visits['v1']}").json()["also"] == []
    ok = world.call(
        "agent",
        "PATCH",
        f"{VISITS}/{visits['v1']}",
        json={"also": [{"other": t["t6"]}], "version": v1["version"]},
    )
    assert ok.status_code == 200, ok.text
    # Bulk: one out-of-scope row refuses the whole batch.
    ids = [visits["v1"], visits["v6"]]
    bulk = world.call(
        "agent",
        "POST",
        VISITS + "/bulk-update",
        json={"ids": ids, "changes": {"also": [{"other": t["t5"]}]}},
    )
    assert bulk.status_code in (200, 422), bulk.text
    if bulk.status_code == 200:
        assert bulk.json()["applied"] is False
    others = [world.call("agent", "GET", f"{VISITS}/{i}").json()["also"] for i in ids]
    # (the agent reads tickets of its department only: the row's cost lookup stays masked)
    assert others == [[{"other": t["t6"], "other_cost": None}], []]
    # Admins and the outsider's own scope: the outsider may link its sales ticket only.
    v2 = world.call("outsider", "GET", f"{VISITS}/{visits['v2']}").json()
    refused_v2 = world.call(
        "outsider",
        "PATCH",
        f"{VISITS}/{visits['v2']}",
        json={"also": [{"other": t["t1"]}], "version": v2["version"]},
    )
    _problem(refused_v2, 422, "submission.invalid")


def test_imported_relations_must_stay_in_the_actor_scope(world: World) -> None:
    t = world.tickets
    url = "/api/v1/apps/acl/forms/visit/imports"
    text = f"Note,Ticket\nok,{t['t1']}\nbad,{t['t2']}\n".encode()

    def run(mode: str) -> Any:
        files = {"file": ("visits.csv", text)}
        done = world.call("agent", "POST", url, files=files, data={"mode": mode})
        assert done.status_code == 202, done.text
        job = world.call("agent", "GET", f"{url}/{done.json()['id']}")
        assert job.status_code == 200, job.text
        return job.json()

    def notes() -> list[str]:
        items = world.call("admin", "GET", VISITS).json()["items"]
        return sorted(item["note"] for item in items)

    assert run("all_or_nothing")["status"] == "failed"
    assert notes() == []  # the in-scope row is not written either
    partial = run("valid_rows")
    assert notes() == ["ok"], partial


def test_imported_titles_match_only_records_in_the_actor_scope(world: World) -> None:
    # t2 (the outsider's) gets t1's title: for the agent the title still names t1 alone, so
    # the import neither fails as ambiguous nor reveals that t2 exists
    t = world.tickets
    renamed = world.call(
        "admin", "PATCH", f"{BASE}/{t['t2']}", json={"subject": "agent one", "version": 1}
    )
    assert renamed.status_code == 200, renamed.text
    url = "/api/v1/apps/acl/forms/visit/imports"
    files = {"file": ("visits.csv", b"Note,Ticket\nby title,agent one\n")}
    done = world.call("agent", "POST", url, files=files, data={"mode": "all_or_nothing"})
    assert done.status_code == 202, done.text
    job = world.call("agent", "GET", f"{url}/{done.json()['id']}").json()
    assert job["status"] == "done", job
    items = world.call("admin", "GET", VISITS).json()["items"]
    assert [(item["note"], item["ticket"]) for item in items] == [("by title", t["t1"])]


def test_lookups_in_subform_rows_follow_the_target_form(world: World) -> None:
    t1 = world.tickets["t1"]
    made = world.call("admin", "POST", VISITS, json={"note": "rows", "also": [{"other": t1}]})
    assert made.status_code == 201, made.text
    url = f"{VISITS}/{made.json()['id']}"
    assert world.call("admin", "GET", url).json()["also"][0]["other_cost"] == 10
    assert world.call("viewer", "GET", url).json()["also"][0]["other_cost"] == 10
    # the engineer reads every visit but not the ticket's cost: the row lookup is masked
    row = world.call("engineer", "GET", url).json()["also"][0]
    assert row["other"] == t1 and row["other_cost"] is None
    listed = world.call("engineer", "GET", VISITS).json()["items"]
    assert [r["other_cost"] for item in listed for r in item["also"] or []] == [None]

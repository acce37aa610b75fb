"""The after-sales ticket flows end to end through the API and the job worker: a ticket created
over HTTP starts ticket_lifecycle, its handle task is completed through the tasks API, the
ticket resolves, the survey goes out 24 h later and the ticket closes itself after 7 days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.conftest import ROOT, login

API = "/api/v1"


@pytest.fixture
def aftersales(client: TestClient, migrated_engine: sa.Engine) -> Iterator[str]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(ROOT / "templates" / "aftersales"))
    yield "aftersales"
    use_environment(None)


def run_worker(engine: sa.Engine, at: datetime) -> int:
    from engine.jobs.providers import collect_handlers
    from engine.jobs.worker import Worker

    return Worker(engine, handlers=collect_handlers(), clock=lambda: at).drain()


def _post(client: TestClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(API + url, json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _ticket(client: TestClient, record_id: int) -> dict[str, Any]:
    return dict(client.get(f"{API}/apps/aftersales/forms/ticket/records/{record_id}").json())


def test_ticket_lifecycle_and_survey(
    client: TestClient, aftersales: str, migrated_engine: sa.Engine
) -> None:
    forms = "/apps/aftersales/forms"
    me = client.get(f"{API}/auth/me").json()
    customer = _post(
        client,
        f"{forms}/customer/records",
        {
            "name": "ACME",
            "code": "C-1",
            "customer_type": "company",
            "address": {
                "province": "上海市",
                "city": "上海市",
                "district": "浦东新区",
                "detail": "1 Road",
            },
        },
    )
    contact = _post(
        client,
        f"{forms}/contact/records",
        {"name": "Li", "customer": customer["id"], "mobile": "13800000000"},
    )
    ticket = _post(
        client,
        f"{forms}/ticket/records",
        {
            "subject": "Printer jams",
            "description": "Paper jam on every print",
            "channel": "phone",
            "ticket_type": "tech_support",
            "customer": customer["id"],
            "contact": contact["id"],
            "priority": "medium",
            "assignee": me["user"]["id"] if "user" in me else me["id"],
        },
    )
    timeline = client.get(f"{API}{forms}/ticket/records/{ticket['id']}/timeline").json()
    [lifecycle] = timeline["instances"]
    assert (lifecycle["flow"], lifecycle["status"]) == ("ticket_lifecycle", "running")
    assigned = _ticket(client, ticket["id"])
    assert assigned["status"] == "assigned"
    # the SLA listener ran in the same transaction: standard policy, medium targets (§2.6)
    assert assigned["sla_policy_key"] == "standard"
    assert (assigned["response_target_sec"], assigned["resolution_target_sec"]) == (14400, 86400)
    assert assigned["response_by"] and assigned["resolution_by"]
    assert assigned["resolution_state"] == "running"

    inbox = client.get(f"{API}/tasks", params={"box": "mine"}).json()
    [task] = [t for t in inbox["items"] if t["instance_id"] == lifecycle["id"]]
    done = client.post(
        f"{API}/tasks/{task['id']}/complete",
        json={
            "values": {
                "resolution_code": "remote_fixed",
                "resolution_notes": "Cleaned rollers",
                "fault_code": "G00",
            }
        },
    )
    assert done.status_code == 200, done.text
    resolved = _ticket(client, ticket["id"])
    detail = client.get(f"{API}/flow-instances/{lifecycle['id']}").json()
    assert resolved["status"] == "resolved", (
        detail["status"],
        detail.get("error"),
        detail["history"][-3:],
    )
    assert resolved["survey_status"] == "scheduled"
    assert resolved["resolution_state"] == "met"

    now = datetime.now(UTC)
    run_worker(migrated_engine, now + timedelta(hours=23))
    assert _ticket(client, ticket["id"])["survey_status"] == "scheduled"
    run_worker(migrated_engine, now + timedelta(hours=24, minutes=5))
    assert _ticket(client, ticket["id"])["survey_status"] == "sent"
    notes = client.get(f"{API}/notifications").json()
    subjects = [n["subject"] for n in notes["items"]]
    assert any(s.startswith("How did we do on") for s in subjects), subjects

    run_worker(migrated_engine, now + timedelta(days=7, minutes=5))
    closed = _ticket(client, ticket["id"])
    assert (closed["status"], closed["close_reason"]) == ("closed", "auto_inactive")
    steps = client.get(f"{API}{forms}/ticket/records/{ticket['id']}/timeline").json()
    statuses = {i["flow"]: i["status"] for i in steps["instances"]}
    assert statuses == {"ticket_lifecycle": "completed", "survey": "completed"}


def test_a_ticket_without_handler_goes_to_an_administrator(
    client: TestClient, aftersales: str
) -> None:
    forms = "/apps/aftersales/forms"
    address = {"province": "上海市", "city": "上海市", "district": "浦东新区", "detail": "2 Road"}
    customer = _post(
        client,
        f"{forms}/customer/records",
        {"name": "Solo", "code": "C-2", "customer_type": "company", "address": address},
    )
    contact = _post(
        client,
        f"{forms}/contact/records",
        {"name": "Wu", "customer": customer["id"], "mobile": "13900000000"},
    )
    ticket = _post(
        client,
        f"{forms}/ticket/records",
        {
            "subject": "No power",
            "description": "Dead on arrival",
            "channel": "phone",
            "ticket_type": "tech_support",
            "customer": customer["id"],
            "contact": contact["id"],
            "priority": "high",
        },
    )
    timeline = client.get(f"{API}{forms}/ticket/records/{ticket['id']}/timeline").json()
    [lifecycle] = timeline["instances"]
    assert lifecycle["status"] == "running"
    inbox = client.get(f"{API}/tasks", params={"box": "mine"}).json()
    assert [t for t in inbox["items"] if t["instance_id"] == lifecycle["id"]]


# --- AFTERSALES §6 scenario 3: routing and auto-assignment -------------------------------------

FORMS = "/apps/aftersales/forms"
DATA = ROOT / "templates" / "aftersales" / "data"
SH = {"province": "上海市", "city": "上海市", "district": "浦东新区", "detail": "3 Road"}


def _seed(client: TestClient, name: str, users: dict[str, int]) -> dict[str, int]:
    """Post the seed records of data/NAME.yaml; relations by code, users by username."""
    import yaml

    seed = yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))
    teams = {r["code"]: r["id"] for r in _records(client, "team")}
    ids = {}
    for row in seed["records"]:
        body = dict(row)
        for field in ("manager", "director", "dispatcher"):
            if field in body:
                body[field] = users[body[field]]
        if "target_team" in body:
            body["target_team"] = teams[body["target_team"]]
        ids[row["code"]] = _post(client, f"{FORMS}/{seed['form']}/records", body)["id"]
    return ids


def _records(client: TestClient, form: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}{FORMS}/{form}/records", params={"limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@pytest.fixture
def routing(client: TestClient, aftersales: str, make_user: Any) -> dict[str, Any]:
    """Seeded teams and rules; a standard customer in east with an AC-300 compressor."""
    me = client.get(f"{API}/auth/me").json()
    me_id = me["user"]["id"] if "user" in me else me["id"]
    teams = _seed(client, "teams", {"admin": me_id})
    rules = _seed(client, "routing_rules", {"admin": me_id})
    customer = _post(client, f"{FORMS}/customer/records", {
        "name": "East Works", "code": "C-E", "customer_type": "company", "tier": "standard",
        "address": SH})  # fmt: skip
    contact = _post(
        client,
        f"{FORMS}/contact/records",
        {"name": "Zhao", "customer": customer["id"], "mobile": "13700000000"},
    )
    model = _post(client, f"{FORMS}/product_model/records", {
        "code": "AC-300", "name": "AC-300", "product_line": "compressor",
        "required_skill": "compressor", "product_manager": me_id})  # fmt: skip
    device = _post(client, f"{FORMS}/device/records", {
        "code": "D-1", "name": "AC-300 #1", "serial_no": "AC3-1", "product_model": model["id"],
        "batch_no": "2406B", "customer": customer["id"], "site_address": SH,
        "delivery_date": "2025-01-01"})  # fmt: skip
    return {"teams": teams, "rules": rules, "customer": customer["id"],
            "contact": contact["id"], "device": device["id"], "make_user": make_user}  # fmt: skip


def _repair(client: TestClient, routing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"subject": "压缩机异响", "description": "压力上不去", "channel": "wechat",
            "ticket_type": "repair", "customer": routing["customer"],
            "contact": routing["contact"], "device": routing["device"],
            "priority": "low"}  # fmt: skip
    return _post(client, f"{FORMS}/ticket/records", {**body, **extra})


def _staff(
    client: TestClient,
    routing: dict[str, Any],
    name: str,
    level: int | None,
    load: int,
    **extra: Any,
) -> tuple[int, int]:
    """A TS-Compressor member with `load` open tickets assigned; (user id, staff id)."""
    user = routing["make_user"](f"eng_{name}", roles=("aftersales.agent",))
    skills = [] if level is None else [{"skill": "compressor", "level": level}]
    body = {"user": user.id, "display_name": name, "teams": [routing["teams"]["TS-COMPRESSOR"]],
            "skills": skills, **extra}  # fmt: skip
    staff = _post(client, f"{FORMS}/staff/records", body)
    for _ in range(load):
        _repair(client, routing, assignee=user.id)
    return user.id, staff["id"]


def _lifecycle(client: TestClient, ticket_id: int) -> dict[str, Any]:
    """The ticket's ticket_lifecycle instance with its history."""
    timeline = client.get(f"{API}{FORMS}/ticket/records/{ticket_id}/timeline").json()
    [lifecycle] = [i for i in timeline["instances"] if i["flow"] == "ticket_lifecycle"]
    return dict(client.get(f"{API}/flow-instances/{lifecycle['id']}").json())


def _assignment(client: TestClient, ticket_id: int) -> dict[str, Any]:
    """The pick_assignee summary in the ticket's lifecycle history."""
    detail = _lifecycle(client, ticket_id)
    assert detail["status"] == "running", detail
    [acted] = [h for h in detail["history"] if h["node"] == "auto_assign" and h["event"] == "acted"]
    [summary] = acted["detail"]["changes"]
    return dict(summary)


def test_scenario_3_auto_assignment_is_fair_and_explains_exclusions(
    client: TestClient, routing: dict[str, Any], migrated_engine: sa.Engine
) -> None:
    now = datetime.now(UTC)
    stamps = {"F": now - timedelta(minutes=20), "G": now - timedelta(minutes=55)}
    people = {}
    for name, availability, level, load, extra in [
        ("A", "available", 3, 5, {}),
        ("B", "available", 2, 3, {}),
        ("C", "away", 3, 0, {}),
        ("D", "available", 1, 0, {}),
        ("E", "available", 3, 3, {"max_open_tickets": 3}),
        ("F", "available", 3, 3, {}),
        ("G", "available", 3, 3, {}),
    ]:
        people[name] = _staff(
            client, routing, name, level, load, availability=availability, **extra
        )
    for name, at in stamps.items():
        _stamp(migrated_engine, people[name][1], at)

    first = _repair(client, routing)
    ticket = _ticket(client, first["id"])
    assert ticket["team"] == routing["teams"]["TS-COMPRESSOR"], _lifecycle(client, first["id"])
    assert (ticket["assignee"], ticket["status"]) == (people["G"][0], "assigned")
    assert ticket["required_skills"] == ["compressor"]  # copied from the rule's subform
    assert (ticket["assignment_mode"], ticket["in_pool"], ticket["priority"]) == (
        "rule", False, "medium")  # fmt: skip
    summary = _assignment(client, first["id"])
    reasons = {e["username"]: (e["reason"], e["detail"]) for e in summary["excluded"]}
    assert reasons["eng_C"][0] == "unavailable"
    assert reasons["eng_D"] == ("skill_too_low", "compressor 1 < 2")
    assert reasons["eng_E"] == ("at_capacity", "$load 3 >= 3")
    assert {"eng_A", "eng_B", "eng_F", "eng_G"}.isdisjoint(reasons)
    assert [r["username"] for r in summary["ranked"]] == ["eng_G", "eng_F", "eng_B", "eng_A"]

    second = _repair(client, routing)  # G now has 4 open tickets and the newest stamp
    assert _ticket(client, second["id"])["assignee"] == people["F"][0]
    run_worker(migrated_engine, datetime.now(UTC))
    assert second["id"] in _task_records(migrated_engine, people["F"][0])


def test_scenario_3_with_everyone_off_the_ticket_goes_to_the_pool(
    client: TestClient, routing: dict[str, Any]
) -> None:
    for name in "ABC":
        _staff(client, routing, name, 3, 0, availability="off")
    ticket = _repair(client, routing)
    stored = _ticket(client, ticket["id"])
    assert (stored["assignee"], stored["in_pool"], stored["status"]) == (None, True, "new")
    summary = _assignment(client, ticket["id"])
    assert summary["assignee"] is None
    assert sorted(e["reason"] for e in summary["excluded"]) == ["unavailable"] * 3
    timeline = client.get(f"{API}{FORMS}/ticket/records/{ticket['id']}/timeline").json()
    [lifecycle] = timeline["instances"]
    detail = client.get(f"{API}/flow-instances/{lifecycle['id']}").json()
    assert any(h["node"] == "claim" and h["event"] == "tasks_opened" for h in detail["history"])

    # an agent claims it from the pool: the claimant becomes the ticket's assignee in the same
    # write (the claim node's `on_claim`)
    agent = TestClient(client.app, base_url="https://testserver")
    login(agent, "eng_A")
    pool = agent.get(f"{API}/tasks", params={"box": "pool"}).json()
    [task] = [t for t in pool["items"] if t["instance_id"] == lifecycle["id"]]
    assert agent.post(f"{API}/tasks/{task['id']}/claim").status_code == 200
    claimed = _ticket(client, ticket["id"])
    assert (claimed["assignee"], claimed["in_pool"], claimed["status"]) == (
        agent.get(f"{API}/auth/me").json()["id"], False, "assigned")  # fmt: skip
    assert claimed["assignment_mode"] == "pool_claim"


def test_rule_order_keywords_and_priority(client: TestClient, routing: dict[str, Any]) -> None:
    teams = routing["teams"]
    complaint = _repair(client, routing, ticket_type="complaint")
    assert _ticket(client, complaint["id"])["team"] == teams["CMP-DESK"]  # rule 10 before 50
    assert _ticket(client, complaint["id"])["priority"] == "high"
    urgent = _repair(client, routing, description="设备冒烟")
    assert _ticket(client, urgent["id"])["priority"] == "urgent"
    consult = _repair(client, routing, ticket_type="consultation")
    assert (_ticket(client, consult["id"])["team"], _ticket(client, consult["id"])["priority"]) == (
        teams["PRESALES"], "low")  # fmt: skip
    vip = _post(client, f"{FORMS}/customer/records", {
        "name": "VIP Co", "code": "C-V", "customer_type": "company", "tier": "vip",
        "address": SH})  # fmt: skip
    contact = _post(client, f"{FORMS}/contact/records",
                    {"name": "Qian", "customer": vip["id"], "mobile": "13600000000"})  # fmt: skip
    vip_ticket = _repair(client, routing, ticket_type="tech_support", customer=vip["id"],
                         contact=contact["id"], device=None)  # fmt: skip
    stored = _ticket(client, vip_ticket["id"])
    assert (stored["team"], stored["priority"]) == (teams["VIP-DESK"], "high")  # rule 30, +1 step


def _stamp(engine: sa.Engine, staff_id: int, at: datetime) -> None:
    """Set a staff row's last_assigned_at (a sys field: written like the engine writes it)."""
    from engine.flows.runtime_env import environment
    from engine.forms.record_writer import RecordWriter
    from engine.storage.uow import UnitOfWork

    with UnitOfWork(engine) as uow:
        writer = RecordWriter(uow, environment().kit, source="flow", depth=0)
        writer.update("aftersales", "staff", staff_id, {"last_assigned_at": at}, actor=None)
        uow.commit()


def _task_records(engine: sa.Engine, user_id: int) -> set[int]:
    """Records of the tasks assigned to `user_id`."""
    from engine.storage.tables_assign import flow_task_groups as groups
    from engine.storage.tables_assign import flow_tasks as tasks

    query = (
        sa.select(groups.c.record_id)
        .join(tasks, tasks.c.group_id == groups.c.id)
        .where(tasks.c.assignee_id == user_id)
    )
    with engine.connect() as conn:
        return {int(r) for r in conn.execute(query).scalars()}


def test_the_agent_role_sees_its_own_and_the_pool_tickets(
    client: TestClient, routing: dict[str, Any], uow_factory: Any
) -> None:
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token

    agent, staff = _staff(client, routing, "X", 3, 0)  # granted the bundle's agent role
    mine = _repair(client, routing)
    _patch_staff(client, staff, availability="off")
    pooled = _repair(client, routing)
    me = client.get(f"{API}/auth/me").json()
    other = _repair(client, routing, assignee=me["user"]["id"] if "user" in me else me["id"])
    with uow_factory() as uow:
        token = create_token(uow=uow, actor=load_actor(uow=uow, user_id=agent), name="agent")
        uow.commit()
    seen = client.get(f"{API}{FORMS}/ticket/records", params={"limit": 200},
                      headers={"Authorization": f"Bearer {token.token}"})  # fmt: skip
    assert seen.status_code == 200, seen.text
    ids = {r["id"] for r in seen.json()["items"]}
    assert {mine["id"], pooled["id"]} <= ids and other["id"] not in ids


def _patch_staff(client: TestClient, staff_id: int, **values: Any) -> None:
    url = f"{API}{FORMS}/staff/records/{staff_id}"
    version = client.get(url).json()["version"]
    response = client.patch(url, json={**values, "version": version})
    assert response.status_code == 200, response.text

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
from tests.conftest import ROOT

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

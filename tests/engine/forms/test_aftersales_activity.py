"""ticket_activity through the API: append-only on every write path (update, delete, bulk),
the defaults and conditional requirements of §2.10."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.conftest import ROOT

API = "/api/v1"
FORMS = f"{API}/apps/aftersales/forms"


@pytest.fixture
def aftersales(client: TestClient, migrated_engine: sa.Engine) -> Iterator[str]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(ROOT / "templates" / "aftersales"))
    yield "aftersales"
    use_environment(None)


def post(client: TestClient, form: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{FORMS}/{form}/records", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def get(client: TestClient, form: str, record_id: int) -> dict[str, Any]:
    return dict(client.get(f"{FORMS}/{form}/records/{record_id}").json())


def make_ticket(client: TestClient, code: str = "C-1", **extra: Any) -> dict[str, Any]:
    """A customer, its contact and a tech-support ticket assigned to the signed-in user."""
    me = client.get(f"{API}/auth/me").json()
    address = {"province": "上海市", "city": "上海市", "district": "浦东新区", "detail": "1 Rd"}
    body = {"name": f"ACME {code}", "code": code, "customer_type": "company", "address": address}
    customer = post(client, "customer", body)
    contact = post(client, "contact", {"name": "Li", "customer": customer["id"],
                                       "mobile": "13800000000"})  # fmt: skip
    ticket = {
        "subject": "Compressor noise", "description": "Loud noise at start",
        "channel": "phone", "ticket_type": "tech_support", "customer": customer["id"],
        "contact": contact["id"], "priority": "medium",
        "assignee": me["user"]["id"] if "user" in me else me["id"], **extra,
    }  # fmt: skip
    return post(client, "ticket", ticket)


def me_id(client: TestClient) -> int:
    me = client.get(f"{API}/auth/me").json()
    return int(me["user"]["id"] if "user" in me else me["id"])


def test_activity_cannot_be_changed_or_deleted(client: TestClient, aftersales: str) -> None:
    ticket = make_ticket(client)
    row = post(client, "ticket_activity", {"ticket": ticket["id"], "kind": "internal_note",
                                           "body": "Checked the logs"})  # fmt: skip
    assert row["visibility"] == "internal"
    url = f"{FORMS}/ticket_activity/records/{row['id']}"
    attempts = [
        client.patch(url, json={"body": "rewritten", "version": row["version"]}),
        client.delete(url),
        client.post(f"{FORMS}/ticket_activity/records/bulk-update",
                    json={"ids": [row["id"]], "changes": {"body": "rewritten"}}),
        client.post(f"{FORMS}/ticket_activity/records/bulk-delete", json={"ids": [row["id"]]}),
    ]  # fmt: skip
    for response in attempts:
        assert response.status_code == 409, response.text
        assert "record.append-only" in response.text
    assert get(client, "ticket_activity", row["id"])["body"] == "Checked the logs"


def test_a_call_needs_its_handling_time(client: TestClient, aftersales: str) -> None:
    ticket = make_ticket(client)
    response = client.post(f"{FORMS}/ticket_activity/records",
                           json={"ticket": ticket["id"], "kind": "call_in"})  # fmt: skip
    assert response.status_code == 422
    assert "handle_sec" in response.text


def test_activity_rows_drive_the_ticket_counters(client: TestClient, aftersales: str) -> None:
    ticket = make_ticket(client)
    agent = me_id(client)
    rows = [
        {"kind": "customer_msg", "body": "Still noisy"},
        {"kind": "public_reply", "body": "We are on it", "actor": agent},
        {"kind": "call_out", "actor": agent, "handle_sec": 300},
        {"kind": "remote_work", "actor": agent, "handle_sec": 1200},
        {"kind": "assignment", "actor": agent},  # a person's transfer
        {"kind": "assignment"},  # the system's assignment is not a transfer
        {"kind": "internal_note", "body": "not counted", "actor": agent},
        {"kind": "customer_msg", "body": "Thanks"},
    ]
    for row in rows:
        post(client, "ticket_activity", {"ticket": ticket["id"], **row})
    counted = get(client, "ticket", ticket["id"])
    totals = ("agent_reply_count", "customer_msg_count", "transfer_count", "handle_sec")
    assert tuple(counted[k] for k in totals) == (2, 2, 1, 1500)


def test_posted_parts_add_to_the_ticket_parts_cost(client: TestClient, aftersales: str) -> None:
    ticket = make_ticket(client)
    visit = post(client, "field_visit", {"ticket": ticket["id"], "visit_type": "repair"})
    part = post(client, "spare_part", {"code": "VK-7", "name": "Valve kit", "barcode": "6900007",
                                       "standard_cost": 420, "sale_price": 680})  # fmt: skip
    first = post(client, "part_consumption", {"visit": visit["id"], "spare_part": part["id"]})
    assert (float(first["unit_cost"]), float(first["cost"])) == (420.0, 420.0)
    post(client, "part_consumption", {"visit": visit["id"], "spare_part": part["id"], "qty": 2})
    assert float(get(client, "ticket", ticket["id"])["parts_cost"]) == 1260.0

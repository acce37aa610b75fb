"""The field_dispatch flow through the API (AFTERSALES §3.4 steps 1-4 and 6, the fixed path):
a visit created on a ticket is counted on it, the engineer rejects then accepts, checks in and
reports a fix; the visit completes and the ticket resolves. A revisit counts as visit #2."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.engine.forms.test_aftersales_activity import (
    API,
    FORMS,
    aftersales,
    get,
    make_ticket,
    me_id,
    post,
)

__all__ = ["aftersales"]  # the fixture, imported for pytest
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7"
       b"\x9a\xa0\xa0\x00\x00\x00\x00IEND\xaeB`\x82")  # fmt: skip


HERE = {"lng": 121.4737, "lat": 31.2304, "accuracy": 8}


def open_task(client: TestClient, visit_id: int) -> dict[str, Any]:
    """The one open task of the visit's field_dispatch instance."""
    timeline = client.get(f"{FORMS}/field_visit/records/{visit_id}/timeline").json()
    [instance] = [i for i in timeline["instances"] if i["flow"] == "field_dispatch"]
    inbox = client.get(f"{API}/tasks", params={"box": "mine"}).json()["items"]
    [task] = [t for t in inbox if t["instance_id"] == instance["id"]]
    return dict(task)


def act(client: TestClient, visit_id: int, verb: str, values: dict[str, Any]) -> dict[str, Any]:
    task = open_task(client, visit_id)
    response = client.post(f"{API}/tasks/{task['id']}/{verb}", json={"values": values})
    assert response.status_code == 200, response.text
    return task


def photo(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post(f"{API}/files", files={"file": (name, PNG, "image/png")})
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_visit(client: TestClient, ticket: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return post(client, "field_visit", {"ticket": ticket["id"], "visit_type": "repair", **extra})


def test_fixed_visit_resolves_the_ticket(client: TestClient, aftersales: str) -> None:
    ticket = make_ticket(client, fault_code="E07")
    engineer = me_id(client)
    visit = new_visit(client, ticket)
    assert (visit["status"], visit["sequence"]) == ("pending_dispatch", 1)
    assert get(client, "ticket", ticket["id"])["visit_count"] == 1

    slot = {"scheduled_start": "2026-01-05T02:00:00Z", "scheduled_end": "2026-01-05T04:00:00Z"}
    assert act(client, visit["id"], "complete", {"engineer": engineer, **slot})["node_key"] == (
        "dispatch"
    )
    assert get(client, "field_visit", visit["id"])["status"] == "dispatched"
    act(client, visit["id"], "reject", {"reject_reason": "Too far today"})
    assert get(client, "field_visit", visit["id"])["status"] == "pending_dispatch"
    act(client, visit["id"], "complete", {"engineer": engineer, **slot})
    act(client, visit["id"], "approve", {})
    assert get(client, "field_visit", visit["id"])["accepted_at"]
    assert get(client, "ticket", ticket["id"])["status"] == "onsite"

    act(client, visit["id"], "complete", {"check_in_location": HERE})  # check in
    arrived = get(client, "field_visit", visit["id"])
    assert arrived["status"] == "checked_in"
    assert get(client, "ticket", ticket["id"])["first_check_in_at"] == arrived["check_in_at"]

    report = {
        "fault_found": "Valve leaking", "action_taken": "Replaced the seal",
        "result": "fixed", "photos_before": [photo(client, "before.png")],
        "photos_after": [photo(client, "after.png")], "signature_waived": True,
        "waiver_reason": "Customer left early", "onsite_rating": 5,
        "items": [{"item_type": "labour", "qty": 1.5, "unit_price": 200, "chargeable": True},
                  {"item_type": "travel", "qty": 1, "unit_price": 100, "chargeable": False}],
    }  # fmt: skip
    act(client, visit["id"], "complete", report)
    done = get(client, "field_visit", visit["id"])
    assert (done["status"], done["check_out_at"] is not None) == ("completed", True)
    assert float(done["total_charge"]) == 300.0  # the free travel line counts 0
    resolved = get(client, "ticket", ticket["id"])
    assert (resolved["status"], resolved["resolution_code"]) == ("resolved", "onsite_fixed")
    assert resolved["resolution_notes"] == "Replaced the seal"


def test_a_revisit_is_visit_two_and_keeps_the_first_arrival(
    client: TestClient, aftersales: str, migrated_engine: sa.Engine
) -> None:
    ticket = make_ticket(client, code="C-2", fault_code="E07")
    engineer = me_id(client)
    slot = {"scheduled_start": "2026-01-05T02:00:00Z", "scheduled_end": "2026-01-05T04:00:00Z"}
    first = new_visit(client, ticket, engineer=engineer, **slot)  # preset: straight to accept
    act(client, first["id"], "approve", {})
    act(client, first["id"], "complete", {"check_in_location": HERE})
    arrival = get(client, "ticket", ticket["id"])["first_check_in_at"]
    report = {"fault_found": "No pressure", "action_taken": "Diagnosed", "result": "not_fixed",
              "incomplete_reason": "needs_parts"}  # fmt: skip
    act(client, first["id"], "complete", report)
    assert get(client, "field_visit", first["id"])["status"] == "incomplete"
    assert get(client, "ticket", ticket["id"])["status"] == "onsite"

    again = new_visit(client, ticket, engineer=engineer, is_revisit_of=first["id"], **slot)
    assert again["sequence"] == 2
    assert get(client, "ticket", ticket["id"])["visit_count"] == 2
    act(client, again["id"], "approve", {})
    act(client, again["id"], "complete", {"check_in_location": HERE})
    assert get(client, "ticket", ticket["id"])["first_check_in_at"] == arrival

"""Stock, transfer, RMA, complaint and preventive-maintenance forms of the after-sales bundle
through the API, and the pm_generation flow (AFTERSALES.md §3.8, scenario 10) with the job
worker on an injected clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
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


def _post(client: TestClient, form: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{FORMS}/{form}/records", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _get(client: TestClient, form: str, record_id: int) -> dict[str, Any]:
    response = client.get(f"{FORMS}/{form}/records/{record_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _me(client: TestClient) -> int:
    me = client.get(f"{API}/auth/me").json()
    return int(me["user"]["id"] if "user" in me else me["id"])


def _part(client: TestClient, code: str, cost: float = 420) -> dict[str, Any]:
    body = {"code": code, "name": code, "barcode": f"BC-{code}", "standard_cost": cost,
            "sale_price": cost * 1.6, "safety_stock": 2}  # fmt: skip
    return _post(client, "spare_part", body)


def _warehouse(client: TestClient, code: str, wh_type: str = "regional") -> dict[str, Any]:
    body = {"code": code, "name": code, "wh_type": wh_type, "region": "east",
            "keeper": _me(client)}  # fmt: skip
    return _post(client, "warehouse", body)


def test_stock_on_hand_is_the_sum_of_append_only_moves(client: TestClient, aftersales: str) -> None:
    part = _part(client, "VK-7")
    hangzhou = _warehouse(client, "WH-HZ")
    stock = _post(client, "stock", {"warehouse": hangzhou["id"], "spare_part": part["id"]})
    assert (stock["min_qty"], stock["standard_cost"], stock["label"]) == (2, 420, "WH-HZ / VK-7")
    receipt = _post(client, "stock_move", {"stock": stock["id"], "qty": 4, "move_type": "receipt"})
    assert (receipt["warehouse"], receipt["spare_part"]) == (hangzhou["id"], part["id"])
    assert receipt["unit_cost"] == 420  # the cost at posting
    _post(client, "stock_move", {"stock": stock["id"], "qty": -1, "move_type": "transfer_out"})
    assert _get(client, "stock", stock["id"])["qty_on_hand"] == 3

    edit = client.patch(
        f"{FORMS}/stock_move/records/{receipt['id']}", json={"qty": 5, "version": 1}
    )
    assert edit.status_code in (405, 409, 422), edit.text
    assert "append" in edit.json()["code"]
    gone = client.delete(f"{FORMS}/stock_move/records/{receipt['id']}")
    assert gone.status_code in (405, 409, 422), gone.text
    again = client.post(
        f"{FORMS}/stock/records", json={"warehouse": hangzhou["id"], "spare_part": part["id"]}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "record.unique-violation"
    zero = client.post(
        f"{FORMS}/stock_move/records", json={"stock": stock["id"], "qty": 0, "move_type": "adjust"}
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["path"] == "qty"


def test_transfer_value_and_checks(client: TestClient, aftersales: str) -> None:
    part = _part(client, "VK-7")
    hangzhou, van = _warehouse(client, "WH-HZ"), _warehouse(client, "VAN-1", "van")
    line = {"spare_part": part["id"], "qty_requested": 1, "unit_cost": 420}
    body = {"request_type": "for_ticket", "from_warehouse": hangzhou["id"],
            "to_warehouse": van["id"], "lines": [line]}  # fmt: skip
    missing_ticket = client.post(f"{FORMS}/transfer_request/records", json=body)
    assert missing_ticket.status_code == 422
    assert [e["path"] for e in missing_ticket.json()["errors"]] == ["ticket"]
    body |= {"request_type": "replenish", "lines": [line, {**line, "qty_requested": 12}]}
    request = _post(client, "transfer_request", body)
    assert request["number"].startswith("TR-") and request["total_cost"] == 5460
    same = client.post(
        f"{FORMS}/transfer_request/records", json={**body, "to_warehouse": hangzhou["id"]}
    )
    assert same.status_code == 422
    assert same.json()["errors"][0]["code"] == "validation.same_warehouse"
    approve = client.patch(
        f"{FORMS}/transfer_request/records/{request['id']}",
        json={"status": "approved", "version": request["version"]},
    )
    assert approve.status_code == 422  # above ¥5,000 an approver is required
    assert [e["path"] for e in approve.json()["errors"]] == ["approver"]


# --- pm_generation: AFTERSALES.md §6 scenario 10 --------------------------------------------


SHANGHAI = timezone(timedelta(hours=8))


def _at(day: str, hour: int = 1, minute: int = 5) -> datetime:
    """A worker run on `day` at hour:minute Shanghai time (the schedule fires at 01:00)."""
    local = datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=SHANGHAI)
    return local.astimezone(UTC)


def _run(engine: sa.Engine, day: str) -> None:
    from engine.jobs.providers import collect_handlers
    from engine.jobs.worker import Worker

    at = _at(day)
    Worker(engine, handlers=collect_handlers(), clock=lambda: at).drain()


def _restart_schedule(engine: sa.Engine, day: str) -> None:
    """The import queued the first run by the real clock; queue it by the test's clock."""
    from engine.flows.runtime_env import environment
    from engine.flows.service import FlowService
    from engine.storage.tables_jobs import job_queue

    with engine.begin() as conn:
        conn.execute(sa.delete(job_queue).where(job_queue.c.kind == "flow.schedule"))
    service = FlowService(db=engine, env=environment(), clock=lambda: _at(day, 0, 0))
    assert service.sync_schedules(app="aftersales") >= 1


def _occurrences(client: TestClient) -> list[dict[str, Any]]:
    listed = client.get(f"{FORMS}/pm_occurrence/records", params={"limit": 100}).json()
    return sorted(listed["items"], key=lambda o: (o["due_date"], o["id"]))


def _masters(client: TestClient, delivered: str = "2024-12-20") -> dict[str, dict[str, Any]]:
    """A key customer in Hangzhou with a contact and one AC-300 delivered on `delivered`."""
    me = _me(client)
    address = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": "1 Rd"}
    customer_body = {"code": "C-10", "name": "华东精工", "tier": "key",
                     "customer_type": "company", "address": address}  # fmt: skip
    customer = _post(client, "customer", customer_body)
    contact_body = {"name": "Li", "customer": customer["id"], "mobile": "13800000000"}
    contact = _post(client, "contact", contact_body)
    model_body = {"code": "AC-300", "name": "AC-300", "product_line": "compressor",
                  "required_skill": "compressor", "product_manager": me}  # fmt: skip
    model = _post(client, "product_model", model_body)
    device = _post(client, "device", {
        "code": "D-1", "name": "AC-300 #1", "serial_no": "AC3-2406B-00123",
        "product_model": model["id"], "batch_no": "2406B", "customer": customer["id"],
        "site_address": address, "delivery_date": delivered, "warranty_months": 12})  # fmt: skip
    return {"customer": customer, "contact": contact, "device": device}


def _plan(client: TestClient, mode: str = "fixed") -> dict[str, Any]:
    """SC-2025-0007: AMC 2025-01-15..2026-01-14, every 3 months, horizon 14, one device."""
    me = _me(client)
    masters = _masters(client)
    customer, contact, device = masters["customer"], masters["contact"], masters["device"]
    contract = _post(client, "service_contract", {
        "customer": customer["id"], "contract_type": "amc", "start_date": "2025-01-15",
        "end_date": "2026-01-14", "devices": [device["id"]], "pm_frequency_months": 3})  # fmt: skip
    team = _post(client, "team", {"code": "FS-E", "name": "Field east", "kind": "field",
                                  "manager": me})  # fmt: skip
    plan = _post(client, "pm_plan", {
        "customer": customer["id"], "contact": contact["id"], "contract": contract["id"],
        "team": team["id"], "default_engineer": me, "devices": [{"device": device["id"]}],
        "checklist": [{"item": "Valve pressure", "expected": "0.8 MPa"}],
        "frequency": 3, "frequency_unit": "month", "horizon_days": 14,
        "start_date": "2025-01-15", "schedule_mode": mode})  # fmt: skip
    assert plan["end_date"] == "2026-01-14"  # defaults to the contract's end
    # step 1 for a new device row: its first occurrence (start + 1·frequency), planned
    first = _post(client, "pm_occurrence", {"plan": plan["id"], "device": device["id"],
                                            "due_date": "2025-04-15"})  # fmt: skip
    assert (first["status"], first["generate_on"], first["missed_on"]) == (
        "planned",
        "2025-04-01",
        "2025-04-19",
    )
    return plan


def _complete(client: TestClient, occurrence: dict[str, Any], day: str) -> dict[str, Any]:
    body = {"status": "done", "done_date": day, "version": occurrence["version"]}
    response = client.patch(f"{FORMS}/pm_occurrence/records/{occurrence['id']}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_scenario_10_fixed_plan(
    client: TestClient, aftersales: str, migrated_engine: sa.Engine
) -> None:
    _plan(client)
    _restart_schedule(migrated_engine, "2025-03-31")
    _run(migrated_engine, "2025-03-31")
    [first] = _occurrences(client)
    assert first["status"] == "planned" and first["ticket"] is None  # nothing yet

    _run(migrated_engine, "2025-04-01")
    first, second = _occurrences(client)
    assert first["status"] == "generated"
    ticket = _get(client, "ticket", first["ticket"])
    assert (ticket["ticket_type"], ticket["channel"], ticket["priority"]) == ("pm", "system", "low")
    assert ticket["device"] == first["device"]
    visit = _get(client, "field_visit", first["visit"])
    assert (visit["ticket"], visit["visit_type"], visit["status"]) == (
        ticket["id"],
        "pm",
        "dispatched",
    )
    assert visit["engineer"] == _me(client)  # the plan's default engineer, on the due date
    assert visit["scheduled_start"] == "2025-04-15T01:00:00Z"  # 09:00 in Shanghai
    assert (second["due_date"], second["status"], second["seq"]) == ("2025-07-15", "planned", 2)

    done = _complete(client, first, "2025-04-18")
    assert done["on_time"] is True  # due 04-15 + grace 3 d
    assert _get(client, "device", first["device"])["last_pm_date"] == "2025-04-18"
    _run(migrated_engine, "2025-04-19")
    assert _occurrences(client)[0]["status"] == "done"  # done is never marked missed

    _run(migrated_engine, "2025-06-30")
    assert _occurrences(client)[1]["status"] == "planned"
    _run(migrated_engine, "2025-07-01")
    occurrences = _occurrences(client)
    assert [o["status"] for o in occurrences] == ["done", "generated", "planned"]
    assert occurrences[2]["due_date"] == "2025-10-15"
    _run(migrated_engine, "2025-10-01")
    occurrences = _occurrences(client)
    # the next date, 2026-01-15, is past the contract's end: the contract yields 3 occurrences
    assert [o["due_date"] for o in occurrences] == ["2025-04-15", "2025-07-15", "2025-10-15"]
    assert occurrences[2]["status"] == "generated" and occurrences[2]["has_next"] is False
    again = {"plan": first["plan"], "device": first["device"], "due_date": "2025-07-15"}
    duplicate = client.post(f"{FORMS}/pm_occurrence/records", json=again)
    assert duplicate.status_code == 409  # unique (plan, device, due_date)
    skip = {"status": "skipped", "version": occurrences[2]["version"]}
    unexplained = client.patch(f"{FORMS}/pm_occurrence/records/{occurrences[2]['id']}", json=skip)
    assert unexplained.status_code == 422
    assert [e["path"] for e in unexplained.json()["errors"]] == ["skip_reason"]


def test_scenario_10_not_done_is_missed_and_the_manager_notified(
    client: TestClient, aftersales: str, migrated_engine: sa.Engine
) -> None:
    _plan(client)
    _restart_schedule(migrated_engine, "2025-04-01")
    _run(migrated_engine, "2025-04-01")
    _run(migrated_engine, "2025-04-18")
    assert _occurrences(client)[0]["status"] == "generated"  # within the grace period
    _run(migrated_engine, "2025-04-19")
    assert _occurrences(client)[0]["status"] == "missed"
    notes = client.get(f"{API}/notifications").json()
    subjects = [n["subject"] for n in notes["items"]]
    assert any(s.startswith("PM missed: plan PM-") for s in subjects), subjects


def test_scenario_10_from_completion(
    client: TestClient, aftersales: str, migrated_engine: sa.Engine
) -> None:
    _plan(client, mode="from_completion")
    _restart_schedule(migrated_engine, "2025-04-01")
    _run(migrated_engine, "2025-04-01")
    [first] = _occurrences(client)  # no fixed next date: it waits for the completion
    assert first["status"] == "generated"
    _complete(client, first, "2025-04-18")
    first, second = _occurrences(client)
    assert (second["due_date"], second["status"]) == ("2025-07-18", "planned")
    _run(migrated_engine, "2025-07-03")
    assert _occurrences(client)[1]["status"] == "planned"
    _run(migrated_engine, "2025-07-04")
    assert _occurrences(client)[1]["status"] == "generated"


# --- RMA and complaint ------------------------------------------------------------------------


def _ticket(client: TestClient, masters: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    body = {"subject": kind, "description": kind, "channel": "phone", "ticket_type": kind,
            "customer": masters["customer"]["id"], "contact": masters["contact"]["id"],
            "device": masters["device"]["id"], "priority": "medium"}  # fmt: skip
    return _post(client, "ticket", body)


@pytest.mark.parametrize(
    ("reason", "requested", "eligibility", "days"),
    [("doa", "2025-06-05", "return", 4), ("defect", "2025-06-12", "exchange", 11),
     ("defect", "2025-06-20", "repair", 19), ("not_satisfied", "2025-06-05", "repair", 4),
     ("defect", "2026-06-20", "paid", 384)],
)  # fmt: skip
def test_rma_eligibility_follows_the_sanbao_rule(
    client: TestClient, aftersales: str, reason: str, requested: str, eligibility: str, days: int
) -> None:
    masters = _masters(client, delivered="2025-06-01")
    ticket = _ticket(client, masters, "return_exchange")
    body = {"ticket": ticket["id"], "rma_type": "exchange", "device": masters["device"]["id"],
            "reason": reason, "request_date": requested}  # fmt: skip
    rma = _post(client, "rma", body)
    assert rma["number"].startswith("RMA-") and rma["customer"] == masters["customer"]["id"]
    assert (rma["days_since_delivery"], rma["eligibility"]) == (days, eligibility)
    refund = client.post(f"{FORMS}/rma/records", json={**body, "rma_type": "return"})
    assert refund.status_code == 422  # a return asks for the refund amount
    assert [e["path"] for e in refund.json()["errors"]] == ["requested_amount"]


def test_complaint_owner_is_not_the_person_complained_about(
    client: TestClient, aftersales: str, make_user: Callable[..., Any]
) -> None:
    masters = _masters(client)
    original = _get(client, "ticket", _ticket(client, masters, "repair")["id"])
    if original["assignee"] is None:  # routing may leave it in the pool: name a handler
        body = {"assignee": _me(client), "version": original["version"]}
        patched = client.patch(f"{FORMS}/ticket/records/{original['id']}", json=body)
        assert patched.status_code == 200, patched.text
        original = patched.json()
    handler = original["assignee"]
    complaint_ticket = _ticket(client, masters, "complaint")
    body = {"ticket": complaint_ticket["id"], "original_ticket": original["id"],
            "category": "attitude", "owner_user": handler}  # fmt: skip
    refused = client.post(f"{FORMS}/complaint/records", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "validation.owner_is_handler"
    other = make_user("complaint_desk")
    complaint = _post(client, "complaint", {**body, "owner_user": other.id})  # type: ignore[attr-defined]
    assert (complaint["original_handler"], complaint["severity"]) == (handler, "normal")
    closing = client.patch(
        f"{FORMS}/complaint/records/{complaint['id']}",
        json={"remedy": "compensation", "version": complaint["version"]},
    )
    assert closing.status_code == 422  # compensation needs its amount
    assert [e["path"] for e in closing.json()["errors"]] == ["compensation_amount"]

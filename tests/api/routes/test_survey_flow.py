"""The satisfaction survey loop end to end through the API, the job worker and a local SMTP
receiver (AFTERSALES §3.5, scenario 5): resolve → 24 h → e-mail with a one-time link → a poor
answer → the service manager's callback task → reopen; a reopen before 24 h cancels; opted-out
contacts are suppressed; unanswered surveys get a reminder and expire."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.conftest import ROOT, login
from tests.engine.outbox.receivers import SmtpInbox, smtp_receiver

API = "/api/v1"
FORMS = f"{API}/apps/aftersales/forms"
NO_AUTH = {"Authorization": ""}
SH = {"province": "上海市", "city": "上海市", "district": "浦东新区", "detail": "1 Road"}


@pytest.fixture
def aftersales(client: TestClient, migrated_engine: sa.Engine) -> Iterator[str]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(ROOT / "templates" / "aftersales"))
    yield "aftersales"
    use_environment(None)


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpInbox]]:
    with smtp_receiver() as found:
        yield found


def run_worker(engine: sa.Engine, at: datetime, smtp_port: int) -> int:
    from engine.jobs.providers import collect_handlers
    from engine.jobs.worker import Worker
    from engine.public.answer_mail import answer_mail_handlers
    from engine.settings import Settings

    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="desk@example.com")
    handlers = {**collect_handlers(), **answer_mail_handlers(settings)}
    return Worker(engine, handlers=handlers, clock=lambda: at).drain()


def post(client: TestClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def get(client: TestClient, form: str, record_id: int) -> dict[str, Any]:
    return dict(client.get(f"{FORMS}/{form}/records/{record_id}").json())


def surveys(client: TestClient, ticket_id: int) -> list[dict[str, Any]]:
    items = client.get(f"{FORMS}/survey_response/records", params={"limit": 100}).json()["items"]
    return [s for s in items if s["ticket"] == ticket_id]


@pytest.fixture
def desk(client: TestClient, aftersales: str, make_user: Any) -> dict[str, Any]:
    """A team with its service manager, a customer and a contact with an e-mail address."""
    me = client.get(f"{API}/auth/me").json()
    me_id = me["user"]["id"] if "user" in me else me["id"]
    manager = make_user("svc_manager", roles=("aftersales.manager",))
    vip_desk = {"code": "VIP", "name": "VIP Desk", "kind": "desk", "manager": manager.id}
    team = post(client, f"{FORMS}/team/records", vip_desk)
    customer = post(client, f"{FORMS}/customer/records", {
        "name": "华东精工", "code": "C-1", "customer_type": "company", "tier": "vip",
        "address": SH, "account_manager": me_id})  # fmt: skip
    contact = post(client, f"{FORMS}/contact/records", {
        "name": "Li", "customer": customer["id"], "mobile": "13800000000",
        "email": "li@example.com", "preferred_channel": "email"})  # fmt: skip
    return {"me": me_id, "manager": manager,
            "team": team["id"], "customer": customer["id"], "contact": contact["id"]}  # fmt: skip


def resolved_ticket(client: TestClient, desk: dict[str, Any]) -> dict[str, Any]:
    """A ticket handled by the test admin and resolved through its handle task."""
    ticket = post(client, f"{FORMS}/ticket/records", {
        "subject": "压缩机异响", "description": "压力上不去", "channel": "phone",
        "ticket_type": "tech_support", "customer": desk["customer"], "contact": desk["contact"],
        "priority": "medium", "assignee": desk["me"], "team": desk["team"]})  # fmt: skip
    tasks = client.get(f"{API}/tasks", params={"box": "mine"}).json()["items"]
    [task] = [t for t in tasks if t["record_id"] == ticket["id"]]
    done = client.post(f"{API}/tasks/{task['id']}/complete", json={"values": {
        "resolution_code": "remote_fixed", "resolution_notes": "Valve reseated",
        "fault_code": "G00"}})  # fmt: skip
    assert done.status_code == 200, done.text
    assert get(client, "ticket", ticket["id"])["status"] == "resolved"
    return ticket


def link_in(inbox: SmtpInbox, index: int = -1) -> str:
    body = inbox.messages[index].get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"/a/([A-Za-z0-9_-]{20,})", body)
    assert found, body
    return found.group(1)


def test_scenario_5_poor_answer_ends_in_the_managers_callback(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox], anonymous_client: TestClient,
) -> None:  # fmt: skip
    port, inbox = smtp
    ticket = resolved_ticket(client, desk)
    [survey] = surveys(client, ticket["id"])
    assert (survey["status"], get(client, "ticket", ticket["id"])["survey_status"]) == (
        "scheduled", "scheduled")  # fmt: skip
    now = datetime.now(UTC)
    run_worker(migrated_engine, now + timedelta(hours=23), port)
    assert get(client, "survey_response", survey["id"])["status"] == "scheduled"
    assert inbox.messages == []
    run_worker(migrated_engine, now + timedelta(hours=24, minutes=5), port)
    sent = get(client, "survey_response", survey["id"])
    assert (sent["status"], sent["channel"], sent["includes_nps"]) == ("sent", "email", True)
    assert get(client, "ticket", ticket["id"])["survey_status"] == "sent"
    assert get(client, "contact", desk["contact"])["last_survey_at"]
    [message] = inbox.messages
    assert message["To"] == "li@example.com" and ticket["number"] in message["Subject"]
    token = link_in(inbox)

    form = client.get(f"{API}/public/answer/{token}", headers=NO_AUTH)
    assert form.status_code == 200, form.text
    offered = [f["key"] for f in form.json()["fields"]]
    assert offered == ["csat", "timeliness", "result_rating", "nps", "ces", "comment",
                       "reason_codes"]  # fmt: skip
    refused = client.post(f"{API}/public/answer/{token}", json={"csat": 2, "status": "x"},
                          headers=NO_AUTH)  # fmt: skip
    assert refused.status_code == 422, refused.text
    answer = {"csat": 2, "nps": 5, "comment": "太慢了", "reason_codes": ["slow"]}
    answered = client.post(f"{API}/public/answer/{token}", json=answer, headers=NO_AUTH)
    assert answered.status_code == 200, answered.text
    again = client.post(f"{API}/public/answer/{token}", json=answer, headers=NO_AUTH)
    assert again.status_code == 409 and again.json()["code"] == "public.answer-used"

    record = get(client, "survey_response", survey["id"])
    assert (record["status"], record["is_poor"], record["nps_bucket"]) == (
        "answered", True, "detractor")  # fmt: skip
    assert record["responded_at"]
    assert get(client, "ticket", ticket["id"])["survey_status"] == "answered"
    contact = get(client, "contact", desk["contact"])
    assert (contact["last_csat"], contact["last_nps"]) == (2, 5) and contact["last_nps_at"]
    assert get(client, "customer", desk["customer"])["last_nps"] == 5
    notes = client.get(f"{API}/notifications").json()["items"]  # the account manager's
    assert any(n["subject"] == f"VIP detractor on {ticket['number']}" for n in notes), notes

    # The callback goes to the team's service manager, due 8 business hours after the answer.
    manager = anonymous_client
    login(manager, "svc_manager")
    tasks = manager.get(f"{API}/tasks", params={"box": "mine"}).json()["items"]
    [callback] = [t for t in tasks if t["record_id"] == survey["id"]]
    from engine.bundles import load_bundle
    from engine.flows.calendar import BusinessCalendar, add_business

    calendar = BusinessCalendar(load_bundle(ROOT / "templates" / "aftersales").definition(
        "calendars", "cn_8x5"))  # type: ignore[arg-type]  # fmt: skip
    responded = datetime.fromisoformat(record["responded_at"])
    expected = add_business(calendar, responded, 8 * 3600)
    assert abs((datetime.fromisoformat(callback["due_at"]) - expected).total_seconds()) < 2
    done = manager.post(f"{API}/tasks/{callback['id']}/complete", json={"values": {
        "callback_outcome": "reopened", "callback_notes": "Valve still leaks"}})  # fmt: skip
    assert done.status_code == 200, done.text
    assert get(client, "ticket", ticket["id"])["status"] == "in_progress"
    final = get(client, "survey_response", survey["id"])
    assert final["callback_outcome"] == "reopened" and final["callback_at"]


def test_a_reopen_before_24_hours_cancels_the_survey(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],
) -> None:  # fmt: skip
    port, inbox = smtp
    ticket = resolved_ticket(client, desk)
    version = get(client, "ticket", ticket["id"])["version"]
    reopened = client.patch(f"{FORMS}/ticket/records/{ticket['id']}",
                            json={"status": "in_progress", "version": version})  # fmt: skip
    assert reopened.status_code == 200, reopened.text
    run_worker(migrated_engine, datetime.now(UTC) + timedelta(hours=24, minutes=5), port)
    [survey] = surveys(client, ticket["id"])
    assert survey["status"] == "cancelled"
    assert get(client, "ticket", ticket["id"])["survey_status"] == "cancelled"
    assert inbox.messages == []


def test_opted_out_contacts_are_suppressed(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],
) -> None:  # fmt: skip
    port, inbox = smtp
    version = get(client, "contact", desk["contact"])["version"]
    changed = client.patch(f"{FORMS}/contact/records/{desk['contact']}",
                           json={"survey_opt_out": True, "version": version})  # fmt: skip
    assert changed.status_code == 200, changed.text
    ticket = resolved_ticket(client, desk)
    [survey] = surveys(client, ticket["id"])
    assert (survey["status"], survey["suppressed_reason"]) == ("suppressed", "opt_out")
    assert get(client, "ticket", ticket["id"])["survey_status"] == "suppressed"
    run_worker(migrated_engine, datetime.now(UTC) + timedelta(hours=25), port)
    assert inbox.messages == []
    assert get(client, "ticket", ticket["id"])["survey_status"] == "suppressed"


def test_unanswered_surveys_are_reminded_then_expire(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],
) -> None:  # fmt: skip
    port, inbox = smtp
    ticket = resolved_ticket(client, desk)
    [survey] = surveys(client, ticket["id"])
    start = datetime.now(UTC)
    run_worker(migrated_engine, start + timedelta(hours=24, minutes=5), port)
    run_worker(migrated_engine, start + timedelta(hours=72, minutes=10), port)
    assert len(inbox.messages) == 2 and "Reminder" in str(inbox.messages[1]["Subject"])
    assert get(client, "survey_response", survey["id"])["reminded_at"]
    first, second = link_in(inbox, 0), link_in(inbox, 1)
    old = client.get(f"{API}/public/answer/{first}", headers=NO_AUTH)
    assert old.status_code == 409 and old.json()["code"] == "public.answer-replaced"
    assert client.get(f"{API}/public/answer/{second}", headers=NO_AUTH).status_code == 200
    run_worker(migrated_engine, start + timedelta(days=8, hours=1), port)
    assert get(client, "survey_response", survey["id"])["status"] == "expired"
    assert get(client, "ticket", ticket["id"])["survey_status"] == "expired"


def test_nps_is_asked_only_90_days_after_the_last_answer(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],
) -> None:  # fmt: skip
    port, inbox = smtp
    recent = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    version = get(client, "contact", desk["contact"])["version"]
    changed = client.patch(f"{FORMS}/contact/records/{desk['contact']}",
                           json={"last_nps_at": recent, "version": version})  # fmt: skip
    assert changed.status_code == 200, changed.text
    ticket = resolved_ticket(client, desk)
    run_worker(migrated_engine, datetime.now(UTC) + timedelta(hours=24, minutes=5), port)
    [survey] = surveys(client, ticket["id"])
    assert (survey["status"], survey["includes_nps"]) == ("sent", False)
    form = client.get(f"{API}/public/answer/{link_in(inbox)}", headers=NO_AUTH).json()
    assert "nps" not in [f["key"] for f in form["fields"]]
    fine = client.post(f"{API}/public/answer/{link_in(inbox)}", headers=NO_AUTH,
                       json={"csat": 5, "ces": 6})  # fmt: skip
    assert fine.status_code == 200, fine.text
    answered = get(client, "survey_response", survey["id"])
    assert (answered["status"], answered["is_poor"]) == ("answered", False)
    timeline = client.get(f"{FORMS}/survey_response/records/{survey['id']}/timeline").json()
    [instance] = timeline["instances"]
    detail = client.get(f"{API}/flow-instances/{instance['id']}").json()
    waiting = sorted(t["node"] for t in detail["tokens"] if t["status"] in ("active", "waiting"))
    assert waiting == ["remind_timer"]  # no callback task; only the (now idle) reminder timer
    assert get(client, "contact", desk["contact"])["last_nps_at"].startswith(recent[:10])


def test_an_unreachable_customer_is_called_again_then_a_complaint_is_opened(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox], anonymous_client: TestClient,
) -> None:  # fmt: skip
    port, inbox = smtp
    ticket = resolved_ticket(client, desk)
    start = datetime.now(UTC)
    run_worker(migrated_engine, start + timedelta(hours=24, minutes=5), port)
    poor = client.post(f"{API}/public/answer/{link_in(inbox)}", headers=NO_AUTH,
                       json={"csat": 1, "comment": "没人来"})  # fmt: skip
    assert poor.status_code == 200, poor.text
    [survey] = surveys(client, ticket["id"])
    manager = anonymous_client
    login(manager, "svc_manager")

    def callback() -> dict[str, Any]:
        tasks = manager.get(f"{API}/tasks", params={"box": "mine"}).json()["items"]
        [task] = [t for t in tasks if t["record_id"] == survey["id"]]
        return dict(task)

    first = callback()
    done = manager.post(f"{API}/tasks/{first['id']}/complete",
                        json={"values": {"callback_outcome": "unreachable"}})  # fmt: skip
    assert done.status_code == 200, done.text
    run_worker(migrated_engine, start + timedelta(days=5), port)  # past the next business day
    second = callback()
    assert second["id"] != first["id"]
    assert get(client, "survey_response", survey["id"])["callback_attempts"] == 1
    done = manager.post(f"{API}/tasks/{second['id']}/complete", json={"values": {
        "callback_outcome": "complaint", "callback_notes": "Wants compensation"}})  # fmt: skip
    assert done.status_code == 200, done.text
    tickets = client.get(f"{FORMS}/ticket/records", params={"limit": 50}).json()["items"]
    [complaint] = [t for t in tickets if t["ticket_type"] == "complaint"]
    # the lifecycle's priority rule (§3.1 1a) takes over: complaint high, + 1 for a VIP
    assert (complaint["parent_ticket"], complaint["channel"], complaint["priority"]) == (
        ticket["id"], "system", "urgent")  # fmt: skip
    assert complaint["description"] == "Wants compensation"
    assert get(client, "survey_response", survey["id"])["callback_attempts"] == 2


def test_without_an_e_mail_address_the_agent_surveys_by_phone(
    client: TestClient, desk: dict[str, Any], migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],
) -> None:  # fmt: skip
    port, inbox = smtp
    version = get(client, "contact", desk["contact"])["version"]
    changed = client.patch(f"{FORMS}/contact/records/{desk['contact']}",
                           json={"email": None, "version": version})  # fmt: skip
    assert changed.status_code == 200, changed.text
    ticket = resolved_ticket(client, desk)
    run_worker(migrated_engine, datetime.now(UTC) + timedelta(hours=24, minutes=5), port)
    [survey] = surveys(client, ticket["id"])
    assert (survey["status"], survey["channel"]) == ("sent", "phone") and inbox.messages == []
    tasks = client.get(f"{API}/tasks", params={"box": "mine"}).json()["items"]
    [task] = [t for t in tasks if t["record_id"] == survey["id"]]  # the agent's (the admin here)
    done = client.post(f"{API}/tasks/{task['id']}/complete",
                       json={"values": {"csat": 4, "ces": 6}})  # fmt: skip
    assert done.status_code == 200, done.text
    answered = get(client, "survey_response", survey["id"])
    assert (answered["status"], answered["csat"]) == ("answered", 4) and answered["responded_at"]
    assert get(client, "ticket", ticket["id"])["survey_status"] == "answered"
    assert get(client, "contact", desk["contact"])["last_csat"] == 4

"""One-time answer links (the `answer_link` flow action) on a small app: issued by a manual
flow, e-mailed through a local SMTP receiver, answered once through the API or the page;
unknown, used, replaced and expired links refused with their codes; bad definitions refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.engine.outbox.receivers import SmtpInbox, smtp_receiver

API = "/api/v1"
RECORDS = f"{API}/apps/ask/forms/booking/records"
NO_AUTH = {"Authorization": ""}
FORM = """
key: booking
label: Booking
fields:
  - {key: guest, type: text, label: Guest, required: true}
  - {key: email, type: email, label: E-mail}
  - {key: vip, type: boolean, label: VIP}
  - {key: rating, type: rating, label: Rating}
  - {key: wine, type: text, label: Wine}
  - {key: note, type: textarea, label: Note}
  - {key: status, type: text, label: Status}
  - {key: answered_at, type: datetime, label: Answered}
"""
FLOW = """
key: ask
label: Ask the guest
form: booking
trigger: {type: manual}
nodes:
  - {key: start, type: start}
  - key: send
    type: action
    actions:
      - type: answer_link
        fields: [rating, wine, note]
        required: [rating]
        show_if: {wine: vip}
        valid_for: VALID
        on_answer: {status: '"answered"', answered_at: $now}
        send_to: email
        subject: {en: 'How was your stay, {guest}?'}
        body: {en: 'Tell us here: {link}'}
  - {key: end, type: end}
edges:
  - {from: start, to: send}
  - {from: send, to: end}
"""


def install(engine: sa.Engine, folder: Path, *, valid: str = "P7D", flow: str = FLOW) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    files = {
        "bundle.yaml": 'key: ask\nname: Ask\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n',
        "forms/booking.yaml": FORM,
        "flows/ask.yaml": flow.replace("VALID", valid),
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))


@pytest.fixture
def ask(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> Iterator[TestClient]:
    install(migrated_engine, tmp_path / "ask")
    yield client
    use_environment(None)


@pytest.fixture
def inbox(migrated_engine: sa.Engine) -> Iterator[tuple[int, SmtpInbox]]:
    with smtp_receiver() as found:
        yield found


def issue(
    api: TestClient, engine: sa.Engine, smtp: tuple[int, SmtpInbox], **values: Any
) -> tuple[int, str]:
    """A booking, the flow started on it, the e-mail delivered: (record id, token)."""
    from engine.jobs.worker import Worker
    from engine.public.answer_mail import answer_mail_handlers
    from engine.settings import Settings

    record = values.pop("record", None)
    if record is None:
        made = api.post(RECORDS, json={"guest": "Wang", "email": "wang@example.com", **values})
        assert made.status_code == 201, made.text
        record = made.json()["id"]
    started = api.post(f"{API}/apps/ask/flows/ask/instances", json={"record_id": record})
    assert started.status_code in (200, 201), started.text
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=smtp[0], public_url="https://service.example.com/"
    )
    Worker(engine, handlers=answer_mail_handlers(settings), clock=lambda: datetime.now(UTC)).drain()
    message = smtp[1].messages[-1]
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"https://service\.example\.com/a/([A-Za-z0-9_-]{30,})", body)
    assert found and message["To"] == "wang@example.com", body
    assert message["Subject"] == "How was your stay, Wang?"
    return int(record), found.group(1)


def test_a_guest_answers_once(ask: TestClient, migrated_engine: sa.Engine, inbox: Any) -> None:
    record, token = issue(ask, migrated_engine, inbox, vip=True)
    form = ask.get(f"{API}/public/answer/{token}", headers=NO_AUTH)
    assert form.status_code == 200, form.text
    fields = {f["key"]: f for f in form.json()["fields"]}
    assert list(fields) == ["rating", "wine", "note"] and fields["rating"]["required"] is True
    missing = ask.post(f"{API}/public/answer/{token}", json={"note": "x"}, headers=NO_AUTH)
    assert [(e["path"], e["code"]) for e in missing.json()["errors"]] == [
        ("rating", "public.answer-required")
    ]
    sneaky = ask.post(f"{API}/public/answer/{token}", json={"rating": 5, "guest": "Li"},
                      headers=NO_AUTH)  # fmt: skip
    assert [(e["path"], e["code"]) for e in sneaky.json()["errors"]] == [
        ("guest", "public.field-not-allowed")
    ]
    done = ask.post(f"{API}/public/answer/{token}", json={"rating": 4, "wine": "red"},
                    headers=NO_AUTH)  # fmt: skip
    assert done.status_code == 200, done.text
    stored = ask.get(f"{RECORDS}/{record}").json()
    assert (stored["rating"], stored["wine"], stored["status"]) == (4, "red", "answered")
    assert stored["answered_at"] and stored["guest"] == "Wang"
    url = f"{API}/public/answer/{token}"
    for again in (
        ask.get(url, headers=NO_AUTH),
        ask.post(url, json={"rating": 1}, headers=NO_AUTH),
    ):
        assert (again.status_code, again.json()["code"]) == (409, "public.answer-used")
    assert ask.get(f"{RECORDS}/{record}").json()["rating"] == 4
    # Answer links are not public forms and not listed with them.
    assert ask.get(f"{API}/apps/ask/forms/booking/public-links").json() == []
    for guess in ("nope", token[:-2], token.upper()):
        unknown = ask.get(f"{API}/public/answer/{guess}", headers=NO_AUTH)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "public.answer-not-found")


def test_show_if_and_a_new_link_replaces_the_old_one(
    ask: TestClient, migrated_engine: sa.Engine, inbox: Any
) -> None:
    record, first = issue(ask, migrated_engine, inbox, vip=False)
    offered = [f["key"] for f in ask.get(f"{API}/public/answer/{first}").json()["fields"]]
    assert offered == ["rating", "note"]  # wine is asked of VIP guests only
    _, second = issue(ask, migrated_engine, inbox, record=record)
    old = ask.get(f"{API}/public/answer/{first}", headers=NO_AUTH)
    assert (old.status_code, old.json()["code"]) == (409, "public.answer-replaced")
    assert ask.get(f"{API}/public/answer/{second}", headers=NO_AUTH).status_code == 200


def test_the_answer_page(ask: TestClient, migrated_engine: sa.Engine, inbox: Any) -> None:
    record, token = issue(ask, migrated_engine, inbox)
    page = ask.get(f"/a/{token}", headers=NO_AUTH)
    assert page.status_code == 200 and 'name="rating"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    bad = ask.post(f"/a/{token}", data={"note": "<b>hi</b>"}, headers=NO_AUTH)
    assert bad.status_code == 422 and "&lt;b&gt;hi&lt;/b&gt;" in bad.text
    sent = ask.post(f"/a/{token}", data={"rating": "5", "note": "<b>hi</b>"}, headers=NO_AUTH)
    assert sent.status_code == 200 and "Thank you" in sent.text
    stored = ask.get(f"{RECORDS}/{record}").json()
    assert (stored["rating"], stored["note"]) == (5, "<b>hi</b>")
    assert ask.get(f"/a/{token}", headers=NO_AUTH).status_code == 409
    assert ask.get("/a/unknown-token", headers=NO_AUTH).status_code == 404


def test_expired_links(
    client: TestClient, migrated_engine: sa.Engine, tmp_path: Path, inbox: Any
) -> None:
    install(migrated_engine, tmp_path / "ask", valid="PT1S")
    try:
        _, token = issue(client, migrated_engine, inbox)
        time.sleep(1.2)
        late = client.post(f"{API}/public/answer/{token}", json={"rating": 3}, headers=NO_AUTH)
        assert (late.status_code, late.json()["code"]) == (409, "public.answer-expired")
    finally:
        use_environment(None)


def test_a_link_naming_unknown_fields_is_refused_at_import(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    from engine.errors import DefinitionError

    bad = (
        FLOW.replace("fields: [rating, wine, note]", "fields: [rating, ghost]")
        .replace("send_to: email", "send_to: nowhere")
        .replace("key: ask\nlabel", "key: ask\nlabel")
    )
    with pytest.raises(DefinitionError) as caught:
        install(migrated_engine, tmp_path / "bad", flow=bad)
    found = {(p.code, p.path) for p in caught.value.problems}
    assert ("flow.unknown-field", "/nodes/1/actions/0/fields/1") in found, found
    assert any(path.endswith("/send_to") for _code, path in found), found

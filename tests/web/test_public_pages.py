"""The public form and tracking pages: mobile form, read-only prefills, errors, escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.engine.public.support import LINK, install

LINKS = "/api/v1/apps/desk/forms/request/public-links"


@pytest.fixture
def desk(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> TestClient:
    install(migrated_engine, tmp_path / "desk")
    device = {"serial": "SN-1", "qr_token": "qr-one", "model": "AC-300"}
    assert client.post("/api/v1/apps/desk/forms/device/records", json=device).status_code == 201
    client.follow_redirects = False
    return client


def _publish(api: TestClient, **changes: Any) -> str:
    response = api.post(LINKS, json={**LINK, **changes})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _anonymous(api: TestClient) -> dict[str, str]:
    return {"Authorization": ""}


def test_the_form_page_shows_fields_and_read_only_prefills(desk: TestClient) -> None:
    token = _publish(desk)
    page = desk.get(f"/p/{token}", params={"qr": "qr-one"}, headers=_anonymous(desk))
    assert page.status_code == 200
    assert 'name="viewport"' in page.text and 'id="public-form"' in page.text
    assert f'action="/p/{token}?qr=qr-one"' in page.text
    assert "SN-1" in page.text and "AC-300" in page.text
    assert 'name="subject"' in page.text and 'name="device"' not in page.text
    assert 'type="tel"' in page.text and "<textarea" in page.text
    assert 'name="internal_note"' not in page.text


def test_posting_redirects_to_tracking_and_escapes_what_was_sent(desk: TestClient) -> None:
    token = _publish(desk)
    attack = '<script>alert("x")</script>&{{7*7}}'
    sent = desk.post(
        f"/p/{token}?qr=qr-one",
        data={"subject": attack, "description": "", "phone": "138"},
        headers=_anonymous(desk),
    )
    assert sent.status_code == 303, sent.text
    tracking = sent.headers["location"]
    assert tracking.startswith("/t/")
    page = desk.get(tracking, headers=_anonymous(desk))
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;{{7*7}}" in page.text
    assert "<script>" not in page.text and "138" not in page.text
    stored = desk.get("/api/v1/apps/desk/forms/request/records").json()["items"][0]
    assert stored["subject"] == attack and stored["channel"] == "qr"


def test_invalid_posts_come_back_with_messages_and_values(desk: TestClient) -> None:
    token = _publish(desk)
    page = desk.post(
        f"/p/{token}?qr=qr-one", data={"description": "it <b>rattles</b>"}, headers=_anonymous(desk)
    )
    assert page.status_code == 422
    assert 'id="error-subject"' in page.text
    assert "it &lt;b&gt;rattles&lt;/b&gt;" in page.text


def test_closed_unknown_limited_and_oversized(desk: TestClient) -> None:
    token = _publish(desk, limits={"per_client": 1, "max_body_bytes": 1024})
    assert desk.get("/p/nope", headers=_anonymous(desk)).status_code == 404
    assert desk.get("/t/nope", headers=_anonymous(desk)).status_code == 404
    assert (
        desk.get(f"/p/{token}", params={"qr": "bad"}, headers=_anonymous(desk)).status_code == 404
    )
    big = desk.post(f"/p/{token}", data={"subject": "x" * 4000}, headers=_anonymous(desk))
    assert big.status_code == 413
    first = desk.post(f"/p/{token}?qr=qr-one", data={"subject": "a"}, headers=_anonymous(desk))
    assert first.status_code == 303
    second = desk.post(f"/p/{token}?qr=qr-one", data={"subject": "b"}, headers=_anonymous(desk))
    assert second.status_code == 429 and "Retry-After" in second.headers
    link_id = desk.get(LINKS).json()[0]["id"]
    desk.patch(f"{LINKS}/{link_id}", json={"enabled": False})
    closed = desk.get(f"/p/{token}", headers=_anonymous(desk))
    assert closed.status_code == 404 and "no longer open" in closed.text
    # The tracking page of an earlier request still works after the link is closed.
    assert desk.get(first.headers["location"], headers=_anonymous(desk)).status_code == 200

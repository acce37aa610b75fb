"""Public links over HTTP: publish, open, submit once, track only that request; limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.storage.uow import UnitOfWork
from tests.engine.public.support import LINK, install

LINKS = "/api/v1/apps/desk/forms/request/public-links"
DEVICES = "/api/v1/apps/desk/forms/device/records"
REQUESTS = "/api/v1/apps/desk/forms/request/records"


@pytest.fixture
def desk(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> TestClient:
    install(migrated_engine, tmp_path / "desk")
    for serial, token, model in (("SN-1", "qr-one", "AC-300"), ("SN-2", "qr-two", "AC-500")):
        made = client.post(DEVICES, json={"serial": serial, "qr_token": token, "model": model})
        assert made.status_code == 201, made.text
    return client


def publish(api: TestClient, **changes: Any) -> dict[str, Any]:
    response = api.post(LINKS, json={**LINK, **changes})
    assert response.status_code == 201, response.text
    return dict(response.json())


def anonymous(api: TestClient) -> dict[str, str]:
    """Headers that drop the admin token the fixture client sends."""
    return {"Authorization": ""}


def submit(api: TestClient, token: str, data: Any, qr: str | None = "qr-one") -> Any:
    params = {"qr": qr} if qr else {}
    return api.post(f"/api/v1/public/{token}", params=params, json=data, headers=anonymous(api))


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text
    return dict(response.json())


def test_a_submitter_creates_one_request_and_tracks_only_it(desk: TestClient) -> None:
    link = publish(desk)
    assert link["url"] == f"/p/{link['token']}" and link["enabled"] is True
    form = desk.get(
        f"/api/v1/public/{link['token']}", params={"qr": "qr-one"}, headers=anonymous(desk)
    )
    assert form.status_code == 200, form.text
    body = form.json()
    assert [f["key"] for f in body["fields"]] == ["subject", "description", "phone"]
    prefilled = {p["key"]: p for p in body["prefilled"]}
    assert prefilled["device"]["display"] == "SN-1" and prefilled["model"]["value"] == "AC-300"
    assert set(body["schema"]["properties"]) == {"subject", "description", "phone"}

    sent = submit(desk, link["token"], {"subject": "Noisy compressor", "phone": "13800000000"})
    assert sent.status_code == 201, sent.text
    tracking = sent.json()
    assert tracking["tracking_url"] == f"/t/{tracking['tracking_token']}"
    assert len(tracking["tracking_token"]) >= 22  # ≥ 128 random bits, URL-safe base64

    stored = desk.get(REQUESTS).json()["items"]
    assert len(stored) == 1
    record = stored[0]
    assert (
        record["channel"] == "qr" and record["model"] == "AC-300" and record["created_by"] is None
    )
    devices = {d["serial"]: d["id"] for d in desk.get(DEVICES).json()["items"]}
    assert record["device"] == devices["SN-1"]

    tracked = desk.get(
        f"/api/v1/public/track/{tracking['tracking_token']}", headers=anonymous(desk)
    )
    assert tracked.status_code == 200, tracked.text
    view = tracked.json()
    assert {f["key"]: f["display"] for f in view["fields"]} == {
        "subject": "Noisy compressor",
        "status": "New",
    }
    assert "phone" not in tracked.text and "13800000000" not in tracked.text


def test_the_submitter_cannot_set_other_fields_or_reach_other_requests(desk: TestClient) -> None:
    link = publish(desk)
    token = link["token"]
    for field, value in (("device", 2), ("internal_note", "x"), ("status", "done"), ("id", 1)):
        refused = submit(desk, token, {"subject": "s", field: value})
        errors = problem(refused, 422, "submission.invalid")["errors"]
        assert [(e["path"], e["code"]) for e in errors] == [(field, "public.field-not-allowed")]
    # Read-only prefills win over the query too: the device comes from the QR token only.
    mine = submit(desk, token, {"subject": "mine"}).json()["tracking_token"]
    other = submit(desk, token, {"subject": "other"}, qr="qr-two").json()["tracking_token"]
    track = "/api/v1/public/track/"
    for guess in ("0", "1", "x" * 32, mine[:-1] + ("A" if mine[-1] != "A" else "B"), mine.upper()):
        problem(desk.get(track + guess, headers=anonymous(desk)), 404, "public.tracking-not-found")
    seen = desk.get(track + mine, headers=anonymous(desk)).json()
    assert [f["value"] for f in seen["fields"] if f["key"] == "subject"] == ["mine"]
    assert "other" not in str(seen) and other != mine
    # Signed-out callers reach no record path at all.
    assert desk.get(REQUESTS, headers=anonymous(desk)).status_code == 401
    assert desk.get(f"{REQUESTS}/1", headers=anonymous(desk)).status_code == 401


def test_deleted_requests_stop_tracking(desk: TestClient) -> None:
    token = publish(desk)["token"]
    tracking = submit(desk, token, {"subject": "gone soon"}).json()["tracking_token"]
    record = desk.get(REQUESTS).json()["items"][0]
    assert desk.delete(f"{REQUESTS}/{record['id']}").status_code == 200
    problem(
        desk.get(f"/api/v1/public/track/{tracking}", headers=anonymous(desk)),
        404,
        "public.tracking-not-found",
    )


def test_invalid_data_and_unknown_codes(desk: TestClient) -> None:
    token = publish(desk)["token"]
    errors = problem(submit(desk, token, {"description": "no subject"}), 422, "submission.invalid")
    assert [e["path"] for e in errors["errors"]] == ["subject"]
    problem(submit(desk, token, {"subject": "s"}, qr="nope"), 404, "public.lookup-not-found")
    problem(submit(desk, token, ["subject"]), 422, "submission.invalid")
    bad = desk.post(f"/api/v1/public/{token}", content=b"{", headers=anonymous(desk))
    assert problem(bad, 422, "submission.invalid")["errors"][0]["code"] == "public.bad-body"
    assert desk.get(REQUESTS).json()["items"] == []


def test_closed_links(desk: TestClient) -> None:
    link = publish(desk)
    problem(submit(desk, "no-such-token", {"subject": "s"}), 404, "public.link-not-found")
    off = desk.patch(f"{LINKS}/{link['id']}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    problem(submit(desk, link["token"], {"subject": "s"}), 404, "public.link-closed")
    page = desk.get(f"/api/v1/public/{link['token']}", headers=anonymous(desk))
    problem(page, 404, "public.link-closed")
    expired = publish(desk, expires_at="2000-01-01T00:00:00Z")
    problem(submit(desk, expired["token"], {"subject": "s"}), 404, "public.link-closed")
    listed = desk.get(LINKS).json()
    assert [x["id"] for x in listed] == [link["id"], expired["id"]]
    other_form = "/api/v1/apps/desk/forms/device/public-links"
    problem(
        desk.patch(f"{other_form}/{link['id']}", json={"enabled": True}),
        404,
        "public.link-not-found",
    )


def test_rate_limits_per_client_and_per_link(desk: TestClient) -> None:
    token = publish(desk, limits={"per_client": 2, "per_link": 100})["token"]
    for _ in range(2):
        assert submit(desk, token, {"subject": "s"}).status_code == 201
    limited = submit(desk, token, {"subject": "s"})
    problem(limited, 429, "public.rate-limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    shared = publish(desk, limits={"per_client": 100, "per_link": 1})["token"]
    assert submit(desk, shared, {"subject": "s"}).status_code == 201
    problem(submit(desk, shared, {"subject": "s"}), 429, "public.rate-limited")
    assert len(desk.get(REQUESTS).json()["items"]) == 3


def test_oversized_bodies_are_refused(desk: TestClient) -> None:
    token = publish(desk, limits={"max_body_bytes": 1024})["token"]
    huge = {"subject": "s", "description": "x" * 5000}
    problem(submit(desk, token, huge), 413, "api.payload-too-large")
    chunks = (b"x" * 512 for _ in range(4))  # no Content-Length: counted while reading
    streamed = desk.post(f"/api/v1/public/{token}", content=chunks, headers=anonymous(desk))
    problem(streamed, 413, "api.payload-too-large")
    assert desk.get(REQUESTS).json()["items"] == []


def test_attack_strings_are_stored_verbatim(desk: TestClient) -> None:
    token = publish(desk)["token"]
    attack = "<script>alert(1)</script>' OR 1=1; DROP TABLE users; --{{7*7}}"
    tracking = submit(desk, token, {"subject": attack}).json()["tracking_token"]
    seen = desk.get(f"/api/v1/public/track/{tracking}", headers=anonymous(desk)).json()
    assert seen["fields"][0]["value"] == attack
    assert desk.get(REQUESTS).json()["items"][0]["subject"] == attack


def test_only_admins_publish_and_links_must_fit_the_form(
    desk: TestClient, make_user: Callable[..., Any], uow_factory: Callable[[], UnitOfWork]
) -> None:
    assert desk.post(LINKS, json=LINK, headers=anonymous(desk)).status_code == 401
    bad = {
        "fields": ["subject", "nope", "device", "status"],
        "prefill": {"channel": {"param": "ch", "readonly": False}},
        "trackable": ["ghost"],
        "lookup": {"relation": "model", "by": "qr_token", "param": "qr"},
    }
    errors = problem(desk.post(LINKS, json=bad), 422, "submission.invalid")["errors"]
    assert {(e["path"], e["code"]) for e in errors} == {
        ("fields/1", "public.unknown-field"),
        ("fields/2", "public.field-not-fillable"),
        ("prefill/channel", "public.field-not-fillable"),
        ("trackable/0", "public.unknown-field"),
        ("lookup/relation", "public.bad-lookup"),
    }
    assert desk.post(LINKS, json={"fields": []}).status_code == 422
    both = {"fields": ["subject"], "prefill": {"channel": {"value": "a", "param": "b"}}}
    assert desk.post(LINKS, json=both).status_code == 422
    missing = "/api/v1/apps/desk/forms/ghost/public-links"
    assert desk.post(missing, json=LINK).status_code == 404


def test_publishing_is_audited(desk: TestClient) -> None:
    link = publish(desk)
    desk.patch(f"{LINKS}/{link['id']}", json={"enabled": False})
    entries = desk.get("/api/v1/audit", params={"target_kind": "public_link"}).json()["items"]
    assert [e["action"] for e in entries] == ["public.link-change", "public.link-create"]
    assert entries[0]["detail"] == {"enabled": False}

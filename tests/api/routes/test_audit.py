"""Audit API: sign-ins, tokens, user and role changes are logged; admins filter and page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.conftest import TEST_PASSWORD


def _actions(client: TestClient, **params: object) -> list[str]:
    response = client.get("/api/v1/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [entry["action"] for entry in response.json()["items"]]


def test_security_events_are_logged(
    admin_client: TestClient, make_user: Callable[..., object]
) -> None:
    make_user("ann")
    login = "/api/v1/auth/login"
    admin_client.post(login, json={"username": "ann", "password": "wrong pw"})
    created = admin_client.post("/api/v1/auth/tokens", json={"name": "erp"}).json()
    admin_client.delete(f"/api/v1/auth/tokens/{created['id']}")
    actions = _actions(admin_client)
    for expected in (
        "auth.login",
        "auth.login-failed",
        "token.create",
        "token.revoke",
        "user.create",
        "role.grant",
    ):
        assert expected in actions
    assert _actions(admin_client, action="auth.login-failed") == ["auth.login-failed"]
    assert _actions(admin_client, target_kind="user", target_key="ann") == [
        "auth.login-failed",
        "user.create",
    ]


def test_filters_by_actor_and_time(admin_client: TestClient) -> None:
    me = admin_client.get("/api/v1/auth/me").json()
    admin_client.post("/api/v1/auth/tokens", json={"name": "erp"})
    mine = _actions(admin_client, actor=me["id"])
    assert "token.create" in mine and "auth.login" in mine
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _actions(admin_client, since=future) == []
    assert "token.create" in _actions(admin_client, until=future)


def test_cursor_pagination(admin_client: TestClient) -> None:
    for index in range(5):
        admin_client.post("/api/v1/auth/tokens", json={"name": f"t{index}"})
    seen: list[int] = []
    cursor = None
    while True:
        params = {"action": "token.create", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = admin_client.get("/api/v1/audit", params=params).json()
        seen += [entry["id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    bad = admin_client.get("/api/v1/audit", params={"cursor": "1 OR 1=1"})
    assert bad.status_code == 422


def test_logout_is_logged(admin_client: TestClient) -> None:
    admin_client.post("/api/v1/auth/logout")
    again = admin_client.post(
        "/api/v1/auth/login", json={"username": "root", "password": TEST_PASSWORD}
    )
    admin_client.headers["X-CSRF-Token"] = again.json()["csrf_token"]
    assert _actions(admin_client, action="auth.logout") == ["auth.logout"]

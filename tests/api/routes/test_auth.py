"""Sign-in over HTTP: cookies, CSRF, logout, throttling (429) and bearer tokens (401 codes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import TEST_PASSWORD, login

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def web(auth_settings: object, make_user: Callable[..., object]) -> Iterator[TestClient]:
    make_user("ann")
    with TestClient(create_app(auth_settings), base_url="https://testserver") as client:  # type: ignore[arg-type]
        yield client


def test_login_sets_a_secure_http_only_lax_cookie(web: TestClient) -> None:
    response = web.post(LOGIN, json={"username": "ann", "password": TEST_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "ann" and body["csrf_token"]
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("tangram_session=")
    )
    lowered = cookie.lower()
    assert "httponly" in lowered and "secure" in lowered and "samesite=lax" in lowered
    me = web.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "ann"


def test_secure_flag_can_be_turned_off_for_http_development(
    auth_settings: object, make_user: Callable[..., object]
) -> None:
    make_user("ann")
    settings = auth_settings.model_copy(update={"cookie_secure": False})  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as client:
        response = client.post(LOGIN, json={"username": "ann", "password": TEST_PASSWORD})
        assert "secure" not in response.headers["set-cookie"].lower()
        assert client.get("/api/v1/auth/me").status_code == 200


def test_anonymous_and_wrong_password(web: TestClient) -> None:
    response = web.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "identity.not-authenticated"
    assert response.headers["content-type"].startswith("application/problem+json")
    wrong = web.post(LOGIN, json={"username": "ann", "password": "nope nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "identity.bad-credentials"
    assert "set-cookie" not in wrong.headers


def test_throttling_answers_429_with_retry_after(web: TestClient) -> None:
    for _ in range(5):  # Settings.login_max_failures_per_user
        assert web.post(LOGIN, json={"username": "ann", "password": "nope nope"}).status_code == 401
    refused = web.post(LOGIN, json={"username": "ann", "password": TEST_PASSWORD})
    assert refused.status_code == 429
    assert refused.json()["code"] == "identity.too-many-attempts"
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60 + 1


def test_csrf_required_for_cookie_requests(web: TestClient) -> None:
    csrf = login(web, "ann")
    del web.headers["X-CSRF-Token"]
    token = {"name": "erp"}
    missing = web.post("/api/v1/auth/tokens", json=token)
    assert missing.status_code == 403 and missing.json()["code"] == "identity.csrf-failed"
    forged = web.post("/api/v1/auth/tokens", json=token, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert forged.status_code == 403 and forged.json()["code"] == "identity.csrf-failed"
    cookie_only = web.post(
        "/api/v1/auth/tokens", json=token, headers={"X-CSRF-Token": web.cookies["tangram_session"]}
    )
    assert cookie_only.status_code == 403
    ok = web.post("/api/v1/auth/tokens", json=token, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert web.get("/api/v1/auth/tokens").status_code == 200  # safe methods need no token


def test_session_fixation_new_id_at_login(web: TestClient) -> None:
    login(web, "ann")
    planted = web.cookies["tangram_session"]
    login(web, "ann")
    assert web.cookies["tangram_session"] != planted
    with TestClient(web.app, base_url="https://testserver") as other:
        other.cookies.set("tangram_session", planted)
        assert other.get("/api/v1/auth/me").status_code == 401


def test_logout_ends_the_session_on_the_server(web: TestClient) -> None:
    login(web, "ann")
    stolen = web.cookies["tangram_session"]
    assert web.post("/api/v1/auth/logout").status_code == 204
    with TestClient(web.app, base_url="https://testserver") as thief:
        thief.cookies.set("tangram_session", stolen)
        response = thief.get("/api/v1/auth/me")
    assert response.status_code == 401 and response.json()["code"] == "identity.session-expired"


def test_logout_needs_the_csrf_token(web: TestClient) -> None:
    login(web, "ann")
    del web.headers["X-CSRF-Token"]
    assert web.post("/api/v1/auth/logout").status_code == 403
    assert web.get("/api/v1/auth/me").status_code == 200


def test_bearer_tokens_lifecycle(web: TestClient) -> None:
    login(web, "ann")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = web.post("/api/v1/auth/tokens", json={"name": "erp", "expires_at": expires}).json()
    secret = created["token"]
    with TestClient(web.app, base_url="https://testserver") as api:
        bearer = {"Authorization": f"Bearer {secret}"}
        assert api.get("/api/v1/auth/me", headers=bearer).json()["username"] == "ann"
        # token requests need no CSRF token
        other = api.post("/api/v1/auth/tokens", json={"name": "second"}, headers=bearer)
        assert other.status_code == 201
        listed = web.get("/api/v1/auth/tokens").json()
        assert [t["name"] for t in listed] == ["erp", "second"]
        assert all("token" not in t for t in listed) and listed[0]["last_used_at"]
        assert web.delete(f"/api/v1/auth/tokens/{created['id']}").status_code == 204
        revoked = api.get("/api/v1/auth/me", headers=bearer)
        assert revoked.status_code == 401 and revoked.json()["code"] == "identity.token-revoked"
        bad = api.get("/api/v1/auth/me", headers={"Authorization": "Bearer tgm_forged"})
        assert bad.json()["code"] == "identity.token-invalid"


def test_expired_token_is_refused(web: TestClient) -> None:
    login(web, "ann")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    secret = web.post("/api/v1/auth/tokens", json={"name": "old", "expires_at": past}).json()[
        "token"
    ]
    response = web.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and response.json()["code"] == "identity.token-expired"


def test_disabled_users_cannot_sign_in_or_use_tokens(
    web: TestClient, admin_client: TestClient
) -> None:
    login(web, "ann")
    secret = web.post("/api/v1/auth/tokens", json={"name": "erp"}).json()["token"]
    ann = next(u for u in admin_client.get("/api/v1/org/users").json() if u["username"] == "ann")
    assert (
        admin_client.patch(f"/api/v1/org/users/{ann['id']}", json={"active": False}).status_code
        == 200
    )
    assert web.get("/api/v1/auth/me").status_code == 401  # the session ended
    token_use = web.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert token_use.status_code == 401
    again = web.post(LOGIN, json={"username": "ann", "password": TEST_PASSWORD})
    assert again.status_code == 401 and again.json()["code"] == "identity.bad-credentials"


def test_logout_with_a_dead_session_just_drops_cookies(web: TestClient) -> None:
    login(web, "ann")
    stale = {"Cookie": f"tangram_session={web.cookies['tangram_session']}"}
    assert web.post("/api/v1/auth/logout").status_code == 204
    assert web.get("/api/v1/auth/me", headers=stale).status_code == 401
    response = web.post("/api/v1/auth/logout", headers=stale)
    assert response.status_code == 204 and "tangram_session=" in response.headers["set-cookie"]

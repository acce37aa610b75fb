"""The sign-in page: CSRF-protected form post, throttling messages, safe redirects, sign-out."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_PASSWORD


@pytest.fixture
def browser(make_user: Callable[..., Any], auth_settings: Any) -> Iterator[TestClient]:
    from api.app import create_app

    make_user("ann")
    app = create_app(auth_settings)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def _csrf(page: Any) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _sign_in(browser: TestClient, password: str = TEST_PASSWORD, **extra: str) -> Any:
    token = _csrf(browser.get("/login"))
    data = {"username": "ann", "password": password, "csrf": token, **extra}
    return browser.post("/login", data=data)


def test_sign_in_redirects_back_and_home_shows_who(browser: TestClient) -> None:
    page = browser.get("/login", params={"next": "/p/abc"})
    assert page.status_code == 200 and 'id="login-form"' in page.text
    assert 'name="next" value="/p/abc"' in page.text
    done = _sign_in(browser, next="/p/abc?x=1")
    assert done.status_code == 303 and done.headers["location"] == "/p/abc?x=1"
    assert "tangram_session" in done.cookies
    home = browser.get("/")
    assert "Signed in as" in home.text and "<code>ann</code>" in home.text
    assert browser.get("/api/v1/auth/me").json()["username"] == "ann"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil", "x"])
def test_redirects_stay_on_this_site(browser: TestClient, target: str) -> None:
    done = _sign_in(browser, next=target)
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_forged_or_missing_csrf_is_refused(browser: TestClient) -> None:
    browser.get("/login")
    for token in ("", "forged"):
        data = {"username": "ann", "password": TEST_PASSWORD, "csrf": token}
        refused = browser.post("/login", data=data)
        assert refused.status_code == 403 and 'id="login-message"' in refused.text
        assert "tangram_session" not in refused.cookies
    browser.cookies.clear()  # a token from the page without its cookie (another site's post)
    stale = _csrf(browser.get("/login"))
    browser.cookies.clear()
    data = {"username": "ann", "password": TEST_PASSWORD, "csrf": stale}
    assert browser.post("/login", data=data).status_code == 403
    assert browser.get("/api/v1/auth/me").status_code == 401


def test_wrong_passwords_then_throttling(browser: TestClient) -> None:
    wrong = _sign_in(browser, password="nope")
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert 'value="ann"' in wrong.text and "nope" not in wrong.text
    for _ in range(4):
        _sign_in(browser, password="nope")
    throttled = _sign_in(browser)  # even the right password waits now
    assert throttled.status_code == 429 and "Too many failed attempts" in throttled.text
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "tangram_session" not in throttled.cookies


def test_sign_out_needs_the_session_csrf_and_ends_the_session(browser: TestClient) -> None:
    _sign_in(browser)
    home = browser.get("/")
    token = _csrf(home)
    assert browser.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert browser.get("/api/v1/auth/me").status_code == 200
    out = browser.post("/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser.get("/api/v1/auth/me").status_code == 401
    assert "Sign in" in browser.get("/").text

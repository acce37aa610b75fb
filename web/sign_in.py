"""The sign-in page: a form post with a CSRF token, throttling messages and a safe redirect back.

Before a session exists there is no session CSRF token, so the login form carries a random
token that must match a cookie set with the form (double submit): another site can neither
read the cookie nor set it, so it cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.security import CSRF_COOKIE, SESSION_COOKIE, get_actor, sign_in_policy
from engine.errors import PermissionDenied
from engine.identity.actor import Actor
from engine.identity.errors import NotAuthenticated, TooManyAttempts
from engine.identity.sessions import check_csrf, resolve_session, sign_in, sign_out
from engine.storage.uow import UnitOfWork

LOGIN_CSRF_COOKIE = "tangram_login_csrf"


def safe_next(target: str | None) -> str:
    """A same-site path to go back to; anything else (other hosts, schemes) is the home page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ch in target for ch in "\r\n\\"):
        return "/"
    return target


def signed_in_actor(request: Request) -> Actor | None:
    """The browser's actor, or None when signed out or the session is over."""
    try:
        return get_actor(request)
    except (NotAuthenticated, PermissionDenied):
        return None


def mount_sign_in(app: FastAPI, templates: Jinja2Templates) -> None:
    """Add GET/POST /login and POST /logout to `app`."""

    def page(request: Request, *, status: int = 200, message: str | None = None,
             username: str = "", next_path: str = "/") -> HTMLResponse:  # fmt: skip
        token = secrets.token_urlsafe(32)
        context = {"csrf": token, "message": message, "username": username, "next": next_path}
        response = templates.TemplateResponse(request, "login.html", context, status_code=status)
        secure = request.app.state.settings.cookie_secure
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, secure=secure, samesite="strict", max_age=3600
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return page(request, next_path=safe_next(next))

    @app.post("/login", include_in_schema=False)
    def login_post(
        request: Request,
        username: Annotated[str, Form(max_length=150)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        back = safe_next(next)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not csrf or not expected or not hmac.compare_digest(csrf, expected):
            message = "The form expired. Please sign in again."
            return page(request, status=403, message=message, username=username, next_path=back)
        client = request.client.host if request.client else "unknown"
        try:
            with UnitOfWork(request.app.state.db) as uow:
                opened = sign_in(
                    uow=uow,
                    policy=sign_in_policy(request),
                    username=username,
                    password=password,
                    client=client,
                    previous_token=request.cookies.get(SESSION_COOKIE),
                )
                max_age = int((opened.expires_at - uow.clock()).total_seconds())
        except TooManyAttempts as err:
            minutes = max(1, (err.retry_after + 59) // 60)
            message = f"Too many failed attempts. Try again in {minutes} minute(s)."
            response = page(request, status=429, message=message, username=username, next_path=back)
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        except NotAuthenticated:
            message = "Wrong username or password."
            return page(request, status=401, message=message, username=username, next_path=back)
        done = RedirectResponse(back, status_code=303)
        secure = request.app.state.settings.cookie_secure
        for name, value, http_only in (
            (SESSION_COOKIE, opened.token, True),
            (CSRF_COOKIE, opened.csrf_token, False),
        ):
            done.set_cookie(
                name, value, max_age=max_age, httponly=http_only, secure=secure, samesite="lax"
            )
        done.delete_cookie(LOGIN_CSRF_COOKIE)
        return done

    @app.post("/logout", include_in_schema=False)
    def logout_post(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
        """End the session on the server (the form sends the session's CSRF token)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            try:
                with UnitOfWork(request.app.state.db) as uow:
                    _check_session_csrf(request, uow, cookie, csrf)
                    sign_out(uow=uow, token=cookie)
                    uow.commit()
            except PermissionDenied:
                return HTMLResponse("Missing or wrong CSRF token.", status_code=403)
            except NotAuthenticated:
                pass  # already over: just drop the cookies
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(CSRF_COOKIE)
        return response


def _check_session_csrf(request: Request, uow: UnitOfWork, cookie: str, csrf: str) -> None:
    session = resolve_session(uow=uow, policy=sign_in_policy(request), token=cookie)
    check_csrf(session, csrf)


__all__ = ["LOGIN_CSRF_COOKIE", "mount_sign_in", "safe_next", "signed_in_actor"]

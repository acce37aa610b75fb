"""Page routes. The Jinja2 environment is built per app, never at import time."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.security import CSRF_COOKIE
from web.public_pages import mount_public_pages
from web.sign_in import mount_sign_in, signed_in_actor
from web.views import load_app_views

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _language(request: Request) -> str:
    accepted = request.headers.get("accept-language", "")
    return "zh" if accepted.lower().startswith("zh") else "en"


def mount_pages(app: FastAPI) -> None:
    """Add the HTML pages to `app`."""
    templates = Jinja2Templates(directory=str(TEMPLATES))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> HTMLResponse:
        apps = load_app_views(db=request.app.state.db, lang=_language(request))
        actor = signed_in_actor(request)
        csrf = request.cookies.get(CSRF_COOKIE, "") if actor is not None else ""
        context = {"apps": apps, "actor": actor, "csrf": csrf}
        return templates.TemplateResponse(request, "home.html", context)

    mount_sign_in(app, templates)
    mount_public_pages(app, templates)


__all__ = ["mount_pages"]

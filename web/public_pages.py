"""Public link pages: the mobile form at /p/{token}, the tracking page at /t/{token} and the
one-time answer page at /a/{token}.

They use the same service as the JSON API (`api/routes/public.py`); a posted form that fails
validation comes back with its values and one message per field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.errors import PayloadTooLarge
from api.routes.public import (
    ANSWER_BODY_LIMIT,
    client_address,
    get_answer_service,
    get_public_service,
    language,
    query_params,
    read_limited,
)
from engine.errors import ConflictError, EngineError, NotFoundError, SubmissionError
from engine.public import RateLimited
from engine.public.views import answer_view, public_form, tracked_view
from engine.registry import FormDefinition

_MESSAGES = {
    "public.answer-not-found": "This link does not exist.",
    "public.answer-used": "Thank you, this has already been answered.",
    "public.answer-expired": "This link has expired.",
    "public.answer-replaced": "A newer link was sent for this; please use that one.",
    "public.link-not-found": "This link does not exist.",
    "public.link-closed": "This form is no longer open.",
    "public.lookup-not-found": "The code on this link is not known.",
    "public.tracking-not-found": "Nothing to show for this link.",
}


def mount_public_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    """Add the public form and tracking pages to `app`."""

    def problem(request: Request, status: int, message: str) -> HTMLResponse:
        context = {"message": message, "lang": language(request)}
        return templates.TemplateResponse(
            request, "public_error.html", context, status_code=status, headers=_NO_STORE
        )

    def form_page(
        request: Request,
        token: str,
        *,
        status: int = 200,
        sent: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> HTMLResponse:
        service = get_public_service(request)
        link, definition = service.open_link(token=token)
        view = public_form(definition, link, service.prefill(link, query_params(request)),
                           lang=language(request))  # fmt: skip
        for item in view["fields"]:
            if sent and item["key"] in sent:
                item["value"] = sent[item["key"]]
        query = urlencode(list(request.query_params.multi_items()))
        action = f"/p/{token}" + (f"?{query}" if query else "")
        context = {
            "form": view,
            "action": action,
            "errors": errors or {},
            "lang": language(request),
        }
        return templates.TemplateResponse(
            request, "public_form.html", context, status_code=status, headers=_NO_STORE
        )

    @app.get("/p/{token}", response_class=HTMLResponse, include_in_schema=False)
    def public_form_page(token: str, request: Request) -> HTMLResponse:
        try:
            return form_page(request, token)
        except NotFoundError as err:
            return problem(request, 404, _MESSAGES.get(err.code, "Not found."))

    @app.post("/p/{token}", include_in_schema=False)
    async def public_form_post(token: str, request: Request) -> Response:
        service = get_public_service(request)
        try:
            limit = await run_in_threadpool(service.body_limit, token=token)
            sent = _form_values(await read_limited(request, limit))
            submitted = await run_in_threadpool(
                service.submit,
                token=token,
                params=query_params(request),
                data=sent,
                client=client_address(request),
            )
        except NotFoundError as err:
            return problem(request, 404, _MESSAGES.get(err.code, "Not found."))
        except PayloadTooLarge:
            return problem(request, 413, "What you sent is too large.")
        except RateLimited as err:
            response = problem(request, 429, "Too many requests. Please try again later.")
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        except SubmissionError as err:
            errors = {e.loc.split("/", 1)[0]: e.message for e in err.errors}
            return await run_in_threadpool(
                form_page, request, token, status=422, sent=sent, errors=errors
            )
        return RedirectResponse(submitted.tracking_path, status_code=303)

    @app.get("/t/{tracking_token}", response_class=HTMLResponse, include_in_schema=False)
    def tracking_page(tracking_token: str, request: Request) -> HTMLResponse:
        service = get_public_service(request)
        try:
            tracked = service.track(token=tracking_token[:200], client=client_address(request))
        except NotFoundError as err:
            return problem(request, 404, _MESSAGES.get(err.code, "Not found."))
        except RateLimited as err:
            response = problem(request, 429, "Too many requests. Please try again later.")
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        context = {"view": tracked_view(tracked, lang=language(request)), "lang": language(request)}
        return templates.TemplateResponse(request, "public_track.html", context, headers=_NO_STORE)

    mount_answer_pages(app, templates)


def mount_answer_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    """Add the one-time answer page /a/{token} (links issued by the answer_link flow action)."""

    def message(request: Request, status: int, text: str) -> HTMLResponse:
        context = {"message": text, "lang": language(request)}
        return templates.TemplateResponse(
            request, "public_error.html", context, status_code=status, headers=_NO_STORE
        )

    def page(
        request: Request, token: str, *, status: int = 200, sent: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> HTMLResponse:  # fmt: skip
        form = get_answer_service(request).open(token=token, client=client_address(request))
        view = answer_view(form, lang=language(request))
        for item in view["fields"]:
            if sent and item["key"] in sent:
                item["value"] = sent[item["key"]]
        context = {"form": view, "action": f"/a/{token}", "errors": errors or {},
                   "lang": language(request)}  # fmt: skip
        return templates.TemplateResponse(
            request, "public_form.html", context, status_code=status, headers=_NO_STORE
        )

    def refused(request: Request, err: EngineError) -> HTMLResponse:
        if isinstance(err, RateLimited):
            response = message(request, 429, "Too many requests. Please try again later.")
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        status = 404 if isinstance(err, NotFoundError) else 409
        return message(request, status, _MESSAGES.get(err.code, "Not found."))

    @app.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    def answer_page(token: str, request: Request) -> HTMLResponse:
        try:
            return page(request, token)
        except (NotFoundError, ConflictError, RateLimited) as err:
            return refused(request, err)

    @app.post("/a/{token}", include_in_schema=False)
    async def answer_post(token: str, request: Request) -> Response:
        service = get_answer_service(request)
        try:
            sent = _form_values(await read_limited(request, ANSWER_BODY_LIMIT))
            form = await run_in_threadpool(
                service.open, token=token, client=client_address(request)
            )
            data = _typed(form.definition, sent)
            await run_in_threadpool(
                service.answer, token=token, data=data, client=client_address(request)
            )
        except (NotFoundError, ConflictError, RateLimited) as err:
            return refused(request, err)
        except PayloadTooLarge:
            return message(request, 413, "What you sent is too large.")
        except SubmissionError as err:
            errors = {e.loc.split("/", 1)[0]: e.message for e in err.errors}
            return await run_in_threadpool(
                page, request, token, status=422, sent=sent, errors=errors
            )
        return message(request, 200, "Thank you for your answer.")


def _typed(definition: FormDefinition, sent: dict[str, Any]) -> dict[str, Any]:
    """Posted form text as the fields' JSON: numbers for number-like fields."""
    out: dict[str, Any] = {}
    for key, value in sent.items():
        field = definition.compiled.fields.get(key)
        kind = str(getattr(field, "type", ""))
        if kind in ("number", "rating", "money", "percent") and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                out[key] = value
                continue
            out[key] = int(number) if number.is_integer() else number
        elif kind == "multiselect" and isinstance(value, str):
            out[key] = [value]
        else:
            out[key] = value
    return out


_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _form_values(body: bytes) -> dict[str, Any]:
    """Form fields as sent (blank ones left out; a repeated key becomes a list)."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=False)
    return {key: values[0] if len(values) == 1 else values for key, values in parsed.items()}


__all__ = ["mount_answer_pages", "mount_public_pages"]

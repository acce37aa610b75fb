"""Public links over HTTP: administrators publish forms; anyone with the link submits once and
follows that one request through its tracking link (docs/public-links.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from api.deps import SettingsDep
from api.errors import PayloadTooLarge
from api.routes.records import get_record_service
from api.schemas import problem_responses
from api.security import AdminActorDep
from engine.errors import FieldError, SubmissionError
from engine.public import PublicLink, PublicLinkService, PublicLinkSpec
from engine.public.answers import AnswerService
from engine.public.views import answer_view, public_form, tracked_view

router = APIRouter(tags=["public"])
LINKS = "/apps/{app}/forms/{form}/public-links"
BAD_BODY = "public.bad-body"


def get_public_service(request: Request) -> PublicLinkService:
    """The app's public link service, sharing the records routes' registry and listeners."""
    state = request.app.state
    service: PublicLinkService | None = getattr(state, "public_links", None)
    if service is None:
        get_record_service(request)  # makes the shared registry
        service = state.public_links = PublicLinkService(
            db=state.db, registry=state.registry, listeners=state.record_listeners
        )
    return service


def get_answer_service(request: Request) -> AnswerService:
    """The app's answer-link service (one-time links issued by flows, `/a/{token}`)."""
    state = request.app.state
    service: AnswerService | None = getattr(state, "answer_links", None)
    if service is None:
        get_record_service(request)
        service = state.answer_links = AnswerService(
            db=state.db, registry=state.registry, listeners=state.record_listeners
        )
    return service


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def query_params(request: Request) -> dict[str, str]:
    return {k: v[:500] for k, v in request.query_params.items()}


def language(request: Request) -> str:
    return "zh" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
    return bytes(body)


class LinkOut(BaseModel):
    id: int
    token: str
    url: str = Field(description="The page to share: /p/{token}")
    app: str
    form: str
    label: str | None
    enabled: bool
    expires_at: datetime | None
    options: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, link: PublicLink) -> LinkOut:
        values = {k: getattr(link, k) for k in cls.model_fields if k != "url"}
        return cls(**values, url=f"/p/{link.token}")


class LinkChange(BaseModel):
    enabled: bool | None = None
    expires_at: datetime | None = None


class SubmittedOut(BaseModel):
    tracking_token: str = Field(description="Shown only now; keep it to follow the request")
    tracking_url: str


ADMIN_ERRORS = problem_responses(403, 404, 422)
PUBLIC_ERRORS = problem_responses(404, 413, 422, 429)


@router.post(LINKS, status_code=201, response_model=LinkOut, responses=ADMIN_ERRORS)
def create_public_link(
    app: str, form: str, spec: PublicLinkSpec, request: Request, actor: AdminActorDep
) -> LinkOut:
    """Publish the form as a public link (administrators)."""
    service = get_public_service(request)
    link = service.create_link(app=app, form=form, spec=spec, actor_id=actor.user_id)
    return LinkOut.of(link)


@router.get(LINKS, response_model=list[LinkOut], responses=ADMIN_ERRORS)
def list_public_links(app: str, form: str, request: Request, actor: AdminActorDep) -> list[LinkOut]:
    return [LinkOut.of(x) for x in get_public_service(request).list_links(app=app, form=form)]


@router.patch(LINKS + "/{link_id}", response_model=LinkOut, responses=ADMIN_ERRORS)
def change_public_link(
    app: str, form: str, link_id: int, change: LinkChange, request: Request, actor: AdminActorDep
) -> LinkOut:
    """Disable or enable a link, or change its expiry (`expires_at: null` removes it)."""
    changes = change.model_dump(exclude_unset=True)
    if changes.get("enabled", True) is None:
        changes.pop("enabled")
    link = get_public_service(request).change_link(
        app=app, form=form, link_id=link_id, changes=changes, actor_id=actor.user_id
    )
    return LinkOut.of(link)


@router.get("/public/{token}", responses=PUBLIC_ERRORS)
def public_form_schema(token: str, request: Request) -> dict[str, Any]:
    """The form behind a public link: fields to fill, read-only prefills and a JSON Schema."""
    service = get_public_service(request)
    link, definition = service.open_link(token=token)
    filled = service.prefill(link, query_params(request))
    return public_form(definition, link, filled, lang=language(request))


@router.post("/public/{token}", status_code=201, response_model=SubmittedOut,
             responses=PUBLIC_ERRORS)  # fmt: skip
async def submit_public_form(token: str, request: Request) -> SubmittedOut:
    """Submit a JSON object of the link's fields; the answer holds the tracking link."""
    service = get_public_service(request)
    limit = await run_in_threadpool(service.body_limit, token=token)
    data = _json_object(await read_limited(request, limit))
    submitted = await run_in_threadpool(
        service.submit,
        token=token,
        params=query_params(request),
        data=data,
        client=client_address(request),
    )
    return SubmittedOut(
        tracking_token=submitted.tracking_token, tracking_url=submitted.tracking_path
    )


class UploadedOut(BaseModel):
    id: str = Field(description="Put this id in the link's file field when submitting")
    name: str
    size: int
    content_type: str


UPLOAD_LIMIT = 50 * 1024 * 1024 + 64 * 1024  # the largest link limit plus multipart framing


@router.post("/public/{token}/files", status_code=201, response_model=UploadedOut,
             responses=PUBLIC_ERRORS)  # fmt: skip
async def upload_public_file(token: str, request: Request, settings: SettingsDep) -> UploadedOut:
    """Attach a file (multipart field `file`) to a submission through this link; the link
    says which fields take files, of which types and sizes (docs/public-links.md)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > min(UPLOAD_LIMIT, settings.max_upload_bytes + 65536):
        raise PayloadTooLarge("the upload exceeds the size limit")
    form = await request.form(max_files=1, max_fields=1)
    upload = form.get("file")
    if not isinstance(upload, StarletteUpload):
        raise SubmissionError([FieldError("file", BAD_BODY, "send the file as multipart `file`")])
    record = await run_in_threadpool(
        get_public_service(request).upload,
        token=token,
        stream=upload.file,
        name=upload.filename or "file",
        client=client_address(request),
        root=settings.data_dir / "files",
        max_bytes=settings.max_upload_bytes,
    )
    return UploadedOut(
        id=record.id, name=record.name, size=record.size, content_type=record.content_type
    )


@router.get("/public/track/{tracking_token}", responses=problem_responses(404, 429))
def track_public_submission(tracking_token: str, request: Request) -> dict[str, Any]:
    """The submitter's request: only the fields its link marks trackable."""
    service = get_public_service(request)
    tracked = service.track(token=tracking_token[:200], client=client_address(request))
    return tracked_view(tracked, lang=language(request))


ANSWER_BODY_LIMIT = 64 * 1024


@router.get("/public/answer/{token}", responses=problem_responses(404, 409, 429))
def answer_form(token: str, request: Request) -> dict[str, Any]:
    """The fields a one-time answer link asks for, with their current values."""
    service = get_answer_service(request)
    form = service.open(token=token, client=client_address(request))
    return answer_view(form, lang=language(request))


@router.post("/public/answer/{token}", responses=problem_responses(404, 409, 413, 422, 429))
async def answer_submit(token: str, request: Request) -> dict[str, bool]:
    """Answer once: a JSON object of the offered fields. A second answer is 409."""
    data = _json_object(await read_limited(request, ANSWER_BODY_LIMIT))
    await run_in_threadpool(
        get_answer_service(request).answer,
        token=token,
        data=data,
        client=client_address(request),
    )
    return {"answered": True}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError as err:
        raise SubmissionError([FieldError("", BAD_BODY, "the body is not JSON")]) from err
    if not isinstance(data, dict):
        raise SubmissionError([FieldError("", BAD_BODY, "send a JSON object of field values")])
    return data


__all__ = [
    "ANSWER_BODY_LIMIT",
    "client_address",
    "get_answer_service",
    "get_public_service",
    "language",
    "query_params",
    "read_limited",
    "router",
]

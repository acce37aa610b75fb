"""Records over HTTP: create, read, update, delete, restore, history, comments, bulk edits.

Records are JSON objects: system fields (`id`, `version`, `created_at`, `created_by`,
`updated_at`, `updated_by`, `owner_id`, `deleted_at`) beside the form's field keys. The version
travels as an `ETag` and comes back in `If-Match` (or as `version` in a PATCH body). The list
endpoint (`GET …/records`) lives in `record_lists.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.errors import PROBLEM_JSON, problem_body, status_for
from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import EngineError, FieldError, SubmissionError
from engine.forms.service import (
    BulkReport,
    CommentRecord,
    HistoryEntry,
    RecordConflict,
    RecordResult,
    RecordService,
)
from engine.identity.permissions import require
from engine.registry import DefinitionRegistry
from engine.storage.form_records import SYSTEM_FIELDS

router = APIRouter(tags=["records"])

FORM = "/apps/{app}/forms/{form}"
RECORDS = FORM + "/records"
VERSION_REQUIRED = "record.version-required"
BAD_VERSION = "record.bad-version"
BULK_FAILED = "record.bulk-failed"


def get_record_service(request: Request) -> RecordService:
    """The app's record service, built on first use next to `app.state.db`."""
    state = request.app.state
    service = getattr(state, "records", None)
    if service is None:
        registry = getattr(state, "registry", None) or DefinitionRegistry()
        state.registry = registry
        service = state.records = RecordService(
            db=state.db, registry=registry, listeners=state.record_listeners
        )
    return service


ServiceDep = Annotated[RecordService, Depends(get_record_service)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
RecordBody = Annotated[dict[str, Any], Body(description="Field values by field key")]


class CommentIn(BaseModel):
    body: str = Field(max_length=20_000)


class BulkUpdateIn(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1000)
    changes: dict[str, Any]
    versions: dict[int, int] | None = Field(
        None, description="Expected version per record id; records not listed are not checked"
    )


class BulkDeleteIn(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1000)


ERRORS = problem_responses(404, 409, 422)


def _problem(err: EngineError, request: Request, **extra: Any) -> JSONResponse:
    status = status_for(err)
    body = problem_body(err, status=status, instance=request.url.path)
    body.update({k: v for k, v in extra.items() if v not in (None, [], ())})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _guarded(request: Request, action: Callable[[], Response]) -> Response:
    """Run `action`; record conflicts carry their field path and the records involved."""
    try:
        return action()
    except RecordConflict as err:
        return _problem(err, request, path=err.path, records=list(err.records))


def _record_response(result: RecordResult, status: int = 200) -> JSONResponse:
    headers = {"ETag": f'"{result.record.version}"'}
    return JSONResponse(result.to_json(), status_code=status, headers=headers)


def _version(if_match: str | None, body: dict[str, Any] | None = None) -> int | None:
    raw: Any = body.pop("version", None) if body is not None else None
    if if_match is not None:
        raw = if_match.strip().removeprefix("W/").strip('"')
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        message = "the version is the record's integer version"
        raise SubmissionError([FieldError("version", BAD_VERSION, message)]) from None


@router.post(RECORDS, status_code=201, responses=ERRORS)
def create_record(
    app: str,
    form: str,
    data: RecordBody,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a record; repeating a request with the same `Idempotency-Key` returns it again."""

    def action() -> Response:
        result = service.create(
            app=app, form=form, data=data, actor=actor, idempotency_key=idempotency_key
        )
        return _record_response(result, 200 if result.replayed else 201)

    return _guarded(request, action)


@router.get(RECORDS + "/{record_id}", responses=ERRORS)
def get_record(
    app: str,
    form: str,
    record_id: int,
    service: ServiceDep,
    actor: RequiredActorDep,
    include_deleted: Annotated[bool, Query(description="Also a soft-deleted record")] = False,
) -> Response:
    result = service.get(
        app=app, form=form, record_id=record_id, include_deleted=include_deleted, actor=actor
    )
    return _record_response(result)


@router.patch(RECORDS + "/{record_id}", responses=ERRORS)
def update_record(
    app: str,
    form: str,
    record_id: int,
    data: RecordBody,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields; the record's version must be given (`If-Match` or `version`)."""
    version = _version(if_match, data)
    if version is None:
        message = "send the version you read, in If-Match or as `version`"
        raise SubmissionError([FieldError("version", VERSION_REQUIRED, message)])

    def action() -> Response:
        result = service.update(
            app=app, form=form, record_id=record_id, data=data, version=version, actor=actor
        )
        return _record_response(result)

    return _guarded(request, action)


@router.delete(RECORDS + "/{record_id}", responses=ERRORS)
def delete_record(
    app: str,
    form: str,
    record_id: int,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
    if_match: IfMatch = None,
) -> Response:
    """Soft-delete a record (restorable); refused while other records depend on it."""
    version = _version(if_match)

    def action() -> Response:
        result = service.delete(
            app=app, form=form, record_id=record_id, actor=actor, version=version
        )
        return _record_response(result)

    return _guarded(request, action)


@router.post(RECORDS + "/{record_id}/restore", responses=ERRORS)
def restore_record(
    app: str,
    form: str,
    record_id: int,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
) -> Response:
    def action() -> Response:
        return _record_response(
            service.restore(app=app, form=form, record_id=record_id, actor=actor)
        )

    return _guarded(request, action)


@router.get(RECORDS + "/{record_id}/history", responses=ERRORS)
def record_history(
    app: str, form: str, record_id: int, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    """Every write to the record, oldest first, with `changes: {field: [old, new]}`."""
    entries = service.history(app=app, form=form, record_id=record_id, actor=actor)
    return {"items": [_history_json(entry) for entry in entries]}


@router.get(RECORDS + "/{record_id}/comments", responses=ERRORS)
def list_comments(
    app: str, form: str, record_id: int, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    comments = service.list_comments(app=app, form=form, record_id=record_id, actor=actor)
    return {"items": [_comment_json(comment) for comment in comments]}


@router.post(RECORDS + "/{record_id}/comments", status_code=201, responses=ERRORS)
def add_comment(
    app: str,
    form: str,
    record_id: int,
    comment: CommentIn,
    service: ServiceDep,
    actor: RequiredActorDep,
) -> dict[str, Any]:
    created = service.add_comment(
        app=app, form=form, record_id=record_id, body=comment.body, actor=actor
    )
    return _comment_json(created)


@router.post(RECORDS + "/bulk-update", responses=ERRORS)
def bulk_update(
    app: str,
    form: str,
    payload: BulkUpdateIn,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
) -> Response:
    """The same changes to many records: all applied, or none and a report per record."""
    report = service.bulk_update(
        app=app,
        form=form,
        ids=payload.ids,
        data=payload.changes,
        actor=actor,
        versions=payload.versions,
    )
    return _bulk_response(report, request)


@router.post(RECORDS + "/bulk-delete", responses=ERRORS)
def bulk_delete(
    app: str,
    form: str,
    payload: BulkDeleteIn,
    request: Request,
    service: ServiceDep,
    actor: RequiredActorDep,
) -> Response:
    """Soft-delete many records: all, or none and a report per record."""
    report = service.bulk_delete(app=app, form=form, ids=payload.ids, actor=actor)
    return _bulk_response(report, request)


@router.get(FORM + "/schema", responses=problem_responses(404))
def record_schema(
    app: str,
    form: str,
    service: ServiceDep,
    actor: RequiredActorDep,
    mode: Annotated[Literal["read", "create", "update"], Query()] = "read",
) -> dict[str, Any]:
    """The JSON Schema of the form's records (`read`, `create` or `update`), from its definition.

    Fields hidden from the actor are left out; the actor needs `read` on the form.
    """
    from engine.forms.record_schema import record_json_schema

    access = service.access(app=app, form=form, actor=actor)
    require(access, "read")
    definition = service.definition(app=app, form=form)
    schema = dict(record_json_schema(definition.compiled, mode=mode))
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {
            k: v
            for k, v in schema["properties"].items()
            if k in SYSTEM_FIELDS or not access.is_hidden(k)
        }
        schema["required"] = [k for k in schema.get("required", []) if k in schema["properties"]]
    return schema


def _bulk_response(report: BulkReport, request: Request) -> Response:
    items = [item.to_dict() for item in report.items]
    if report.applied:
        return JSONResponse({"applied": True, "items": items})
    failed = [item for item in report.items if not item.ok]
    reasons = {item.reason for item in failed}
    status = 409 if "conflict" in reasons else 422 if "invalid" in reasons else 404
    err = EngineError(f"{len(failed)} of {len(items)} records failed; none changed")
    err.code = BULK_FAILED
    body = problem_body(err, status=status, instance=request.url.path)
    body.update(applied=False, items=items)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _history_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "at": entry.at.isoformat(),
        "actor": entry.actor_id,
        "action": entry.action,
        "changes": entry.changes,
    }


def _comment_json(comment: CommentRecord) -> dict[str, Any]:
    return {
        "id": comment.id,
        "at": comment.at.isoformat(),
        "actor": comment.actor_id,
        "body": comment.body,
    }


__all__ = ["get_record_service", "router"]

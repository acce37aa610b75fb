"""Maps engine errors to `application/problem+json` responses (RFC 9457) with codes and paths."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.errors import (
    ConflictError,
    DefinitionError,
    EngineError,
    NotFoundError,
    PermissionDenied,
    SubmissionError,
    TransitionError,
)
from engine.storage.files import FileTooLarge

PROBLEM_JSON = "application/problem+json"


class PayloadTooLarge(EngineError):
    """An upload exceeds the configured limit (an API concern: the engine never streams HTTP)."""

    code = "api.payload-too-large"


_STATUS: tuple[tuple[type[EngineError], int], ...] = (
    (PayloadTooLarge, 413),
    (FileTooLarge, 413),
    (DefinitionError, 422),
    (SubmissionError, 422),
    (TransitionError, 409),
    (ConflictError, 409),
    (NotFoundError, 404),
    (PermissionDenied, 403),
)


def status_for(err: EngineError) -> int:
    """The HTTP status of an engine error; 400 for kinds not listed."""
    for kind, status in _STATUS:
        if isinstance(err, kind):
            return status
    return 400


def problem_body(err: EngineError, *, status: int, instance: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://tangram.dev/errors/{err.code}",
        "title": err.code,
        "status": status,
        "detail": err.message,
        "instance": instance,
        "code": err.code,
    }
    if isinstance(err, DefinitionError):
        body["problems"] = [p.to_dict() for p in err.problems]
    if isinstance(err, SubmissionError):
        body["errors"] = [e.to_dict() for e in err.errors]
    return body


def problem_response(err: EngineError, request: Request) -> JSONResponse:
    status = status_for(err)
    body = problem_body(err, status=status, instance=request.url.path)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def _handle_engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EngineError)  # registered for EngineError only
    return problem_response(exc, request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EngineError, _handle_engine_error)


__all__ = [
    "PROBLEM_JSON",
    "PayloadTooLarge",
    "install_error_handlers",
    "problem_body",
    "status_for",
]

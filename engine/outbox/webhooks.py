"""Outbound webhooks: queued in the caller's transaction, delivered signed by a worker.

Each delivery carries `X-Tangram-Delivery` (the same id on every retry, for the receiver's
idempotency), `X-Tangram-Timestamp` (Unix seconds) and, with a secret, `X-Tangram-Signature:
sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` under the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from engine import __version__
from engine.errors import EngineError
from engine.jobs.errors import JobFailure
from engine.jobs.queue import enqueue
from engine.jobs.types import JobContext
from engine.storage.sqltypes import utc_now
from engine.storage.tables_jobs import outbox_deliveries

WEBHOOK_JOB = "outbox.webhook"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
INVALID_URL = "outbox.invalid-webhook-url"
INVALID_METHOD = "outbox.invalid-webhook-method"
SECRET_MISSING = "outbox.secret-missing"


def send_webhook(
    conn: sa.Connection,
    *,
    url: str,
    method: str = "POST",
    payload: Mapping[str, Any],
    secret_name: str | None = None,
    key: str | None = None,
    max_attempts: int = 8,
) -> int | None:
    """Queue a webhook call in the caller's transaction; returns the job id (None: key queued).

    The secret is looked up at delivery time from `TANGRAM_SECRET_<SECRET_NAME>`.

    Raises:
        EngineError: `outbox.invalid-webhook-url` (not http/https with a host),
            `outbox.invalid-webhook-method`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(f"webhook URL {url!r} is not an http(s) URL", code=INVALID_URL)
    if method.upper() not in METHODS:
        raise EngineError(f"webhook method {method!r} is not one of {METHODS}", code=INVALID_METHOD)
    job_payload = {
        "url": url,
        "method": method.upper(),
        "body": dict(payload),
        "secret_name": secret_name,
        "delivery_id": uuid.uuid4().hex,
    }
    return enqueue(
        conn,
        kind=WEBHOOK_JOB,
        payload=job_payload,
        due_at=utc_now(),
        key=key,
        max_attempts=max_attempts,
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Tangram-Signature` value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def endpoint_of(url: str) -> str:
    """The endpoint a delivery is logged under: the URL without query or credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path or '/'}"


@dataclass(frozen=True, slots=True)
class _Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_webhook(
    ctx: JobContext, *, timeout: float, secret_of: Callable[[str], str | None]
) -> None:
    """The `outbox.webhook` handler: one signed attempt, logged whatever happens.

    A 2xx answer completes the job; anything else raises `JobFailure` so the job is retried.
    """
    job = ctx.payload
    secret_name = job.get("secret_name")
    secret = secret_of(secret_name) if secret_name else None
    if secret_name and secret is None:
        message = f"{SECRET_MISSING}: set TANGRAM_SECRET_{str(secret_name).upper()}"
        attempt = _Attempt(status_code=None, error=message, duration_ms=0)
    else:
        attempt = _post(job, secret, timeout)
    row = {
        "job_id": ctx.job_id,
        "delivery_id": job["delivery_id"],
        "endpoint": endpoint_of(job["url"])[:2000],
        "attempt": ctx.attempt,
        "status_code": attempt.status_code,
        "ok": attempt.ok,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
        "at": ctx.now,
    }
    if attempt.ok:
        ctx.uow.conn.execute(outbox_deliveries.insert().values(row))
        return
    problem = attempt.error or f"HTTP {attempt.status_code}"
    raise JobFailure(
        f"webhook {row['endpoint']}: {problem}",
        record=lambda conn: _log(conn, row),
    )


def _log(conn: sa.Connection, row: Mapping[str, Any]) -> None:
    conn.execute(outbox_deliveries.insert().values(dict(row)))


def _post(job: Mapping[str, Any], secret: str | None, timeout: float) -> _Attempt:
    import httpx  # imported here: only workers that deliver webhooks need it

    body = json.dumps(job["body"], separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"tangram/{__version__}",
        "X-Tangram-Delivery": str(job["delivery_id"]),
        "X-Tangram-Timestamp": timestamp,
    }
    if secret is not None:
        headers["X-Tangram-Signature"] = sign(secret, timestamp, body)
    started = time.perf_counter()
    try:
        response = httpx.request(
            job["method"], job["url"], content=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as err:
        elapsed = _ms_since(started)
        return _Attempt(
            status_code=None, error=f"{type(err).__name__}: {err}"[:2000], duration_ms=elapsed
        )
    return _Attempt(status_code=response.status_code, error=None, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


__all__ = [
    "INVALID_METHOD",
    "INVALID_URL",
    "METHODS",
    "SECRET_MISSING",
    "WEBHOOK_JOB",
    "deliver_webhook",
    "endpoint_of",
    "send_webhook",
    "sign",
]

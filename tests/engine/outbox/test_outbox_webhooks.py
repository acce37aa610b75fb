"""Outbound webhooks against a real local HTTP receiver: signed, logged per attempt, retried on
500s and timeouts with the same delivery id, failing endpoints reported, never disabled."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlalchemy as sa

from engine.errors import EngineError
from engine.jobs.worker import Worker, WorkerOptions
from engine.outbox import send_webhook
from engine.outbox.deliveries import endpoint_health, list_deliveries
from engine.outbox.handlers import outbox_handlers
from engine.outbox.webhooks import endpoint_of, sign
from engine.settings import Settings
from engine.storage.tables_jobs import job_queue
from tests.engine.outbox.receivers import webhook_receiver

QUICK = WorkerOptions(retry_base_seconds=0)


def _worker(db: sa.Engine, timeout: float = 2.0) -> Worker:
    handlers = outbox_handlers(Settings(webhook_timeout_seconds=timeout))
    return Worker(db, handlers=handlers, options=QUICK)


def _send(db: sa.Engine, url: str, **kwargs: object) -> int:
    with db.begin() as conn:
        job_id = send_webhook(conn, url=url, payload={"ticket": 7, "status": "open"}, **kwargs)  # type: ignore[arg-type]
    assert job_id is not None
    return job_id


def _job(db: sa.Engine, job_id: int) -> sa.RowMapping:
    with db.connect() as conn:
        return conn.execute(sa.select(job_queue).where(job_queue.c.id == job_id)).mappings().one()


def test_a_delivery_is_signed_and_logged(
    migrated_engine: sa.Engine, uow_factory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANGRAM_SECRET_CRM", "s3cret")
    with webhook_receiver() as (base, received):
        job_id = _send(migrated_engine, f"{base}/hooks/crm?token=x", secret_name="crm")
        assert _worker(migrated_engine).drain() == 1
    [(method, path, headers, body)] = received.requests
    assert (method, path) == ("POST", "/hooks/crm?token=x")
    assert body == b'{"status":"open","ticket":7}'
    timestamp = headers["X-Tangram-Timestamp"]
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Tangram-Signature"] == f"sha256={expected}" == sign("s3cret", timestamp, body)
    assert headers["Content-Type"] == "application/json"
    with migrated_engine.connect() as conn:
        [delivery] = list_deliveries(conn)
    assert delivery.delivery_id == headers["X-Tangram-Delivery"]
    assert (delivery.job_id, delivery.ok, delivery.status_code, delivery.attempt) == (
        job_id,
        True,
        200,
        1,
    )
    assert delivery.endpoint == f"{base}/hooks/crm"  # no query string: it may hold a token
    assert _job(migrated_engine, job_id)["status"] == "done"


def test_a_500_is_retried_with_the_same_delivery_id_and_logged(
    migrated_engine: sa.Engine, uow_factory: object
) -> None:
    with webhook_receiver() as (base, received):
        received.statuses = [500, 503]
        job_id = _send(migrated_engine, f"{base}/hook")
        worker = _worker(migrated_engine)
        worker.run_batch()
        job = _job(migrated_engine, job_id)
        assert (job["status"], job["attempts"]) == ("queued", 1)
        assert "HTTP 500" in job["last_error"]
        with migrated_engine.connect() as conn:
            [health] = endpoint_health(conn)
        assert (health.is_failing, health.failures_since_success) == (True, 1)
        worker.drain()
    assert _job(migrated_engine, job_id)["status"] == "done"
    assert len({headers["X-Tangram-Delivery"] for _, _, headers, _ in received.requests}) == 1
    with migrated_engine.connect() as conn:
        log = list_deliveries(conn, endpoint=f"{base}/hook")
        [health] = endpoint_health(conn)
    assert [(d.attempt, d.status_code, d.ok) for d in log] == [
        (3, 200, True),
        (2, 503, False),
        (1, 500, False),
    ]
    assert (health.is_failing, health.attempts, health.last_status_code) == (False, 3, 200)


def test_a_receiver_that_times_out_fails_the_job_visibly(
    migrated_engine: sa.Engine, uow_factory: object
) -> None:
    with webhook_receiver() as (base, received):
        received.delay_seconds = 1.0
        job_id = _send(migrated_engine, f"{base}/slow", max_attempts=2)
        _worker(migrated_engine, timeout=0.2).drain()
    job = _job(migrated_engine, job_id)
    assert (job["status"], job["attempts"]) == ("failed", 2)
    assert "ReadTimeout" in job["last_error"]
    with migrated_engine.connect() as conn:
        log = list_deliveries(conn, ok=False)
        [health] = endpoint_health(conn)
    assert [(d.attempt, d.status_code) for d in log] == [(2, None), (1, None)]
    assert all("ReadTimeout" in (d.error or "") for d in log)
    assert (health.endpoint, health.is_failing, health.failures_since_success) == (
        endpoint_of(f"{base}/slow"),
        True,
        2,
    )


def test_a_missing_secret_fails_the_attempt_with_its_code(
    migrated_engine: sa.Engine, uow_factory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANGRAM_SECRET_NOPE", raising=False)
    with webhook_receiver() as (base, received):
        job_id = _send(migrated_engine, f"{base}/x", secret_name="nope", max_attempts=1)
        _worker(migrated_engine).drain()
    assert received.requests == []  # never sent unsigned
    job = _job(migrated_engine, job_id)
    assert job["status"] == "failed" and "outbox.secret-missing" in job["last_error"]


@pytest.mark.parametrize(
    ("url", "method", "code"),
    [
        ("ftp://example.test/x", "POST", "outbox.invalid-webhook-url"),
        ("http:///nohost", "POST", "outbox.invalid-webhook-url"),
        ("https://example.test/x", "GET", "outbox.invalid-webhook-method"),
    ],
)
def test_bad_webhooks_are_refused_when_queued(
    conn: sa.Connection, url: str, method: str, code: str
) -> None:
    with pytest.raises(EngineError) as caught:
        send_webhook(conn, url=url, method=method, payload={})
    assert caught.value.code == code
    assert conn.execute(sa.select(sa.func.count()).select_from(job_queue)).scalar_one() == 0

"""Admin API for jobs and webhook deliveries: failed jobs listed and retried, failing endpoints
reported; administrators only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.jobs import enqueue
from engine.jobs.worker import Worker, WorkerOptions
from engine.outbox import send_webhook
from engine.outbox.handlers import outbox_handlers
from engine.settings import Settings
from tests.conftest import login
from tests.engine.outbox.receivers import webhook_receiver

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def _failed_job(db: sa.Engine, key: str | None = None) -> int:
    with db.begin() as conn:
        job_id = enqueue(conn, kind="test.orphan", payload={"n": 1}, due_at=PAST, key=key)
    Worker(db, handlers={}).drain()  # no handler: fails at once
    assert job_id is not None
    return job_id


def test_failed_jobs_are_listed_and_retried(client: TestClient, migrated_engine: sa.Engine) -> None:
    job_id = _failed_job(migrated_engine)
    response = client.get("/api/v1/admin/jobs", params={"status": "failed"})
    assert response.status_code == 200, response.text
    [job] = response.json()["items"]
    assert (job["id"], job["kind"], job["status"], job["attempts"]) == (
        job_id,
        "test.orphan",
        "failed",
        1,
    )
    assert job["last_error"].startswith("job.no-handler")
    retried = client.post(f"/api/v1/admin/jobs/{job_id}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("queued", 0)
    assert client.get("/api/v1/admin/jobs", params={"status": "failed"}).json()["items"] == []
    again = client.post(f"/api/v1/admin/jobs/{job_id}/retry")
    assert (again.status_code, again.json()["code"]) == (409, "job.not-retryable")
    audit = client.get("/api/v1/audit", params={"action": "job.retry"}).json()["items"]
    assert [entry["target_key"] for entry in audit] == [str(job_id)]


def test_retry_refuses_a_key_that_is_pending_again(
    client: TestClient, migrated_engine: sa.Engine
) -> None:
    job_id = _failed_job(migrated_engine, key="timer:1")
    with migrated_engine.begin() as conn:
        enqueue(
            conn,
            kind="test.orphan",
            payload={},
            due_at=datetime(2099, 1, 1, tzinfo=UTC),
            key="timer:1",
        )
    response = client.post(f"/api/v1/admin/jobs/{job_id}/retry")
    assert (response.status_code, response.json()["code"]) == (409, "job.key-active")


def test_unknown_job_and_paging(client: TestClient, migrated_engine: sa.Engine) -> None:
    response = client.get("/api/v1/admin/jobs/999999")
    assert (response.status_code, response.json()["code"]) == (404, "job.not-found")
    with migrated_engine.begin() as conn:
        ids = [enqueue(conn, kind="k", payload={}, due_at=PAST) for _ in range(3)]
    page = client.get("/api/v1/admin/jobs", params={"limit": 2}).json()
    assert [job["id"] for job in page["items"]] == ids[:0:-1]
    rest = client.get("/api/v1/admin/jobs", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [job["id"] for job in rest.json()["items"]] == ids[:1]
    assert rest.json()["next_cursor"] is None
    assert client.get("/api/v1/admin/jobs", params={"status": "nope"}).status_code == 422


def test_failing_endpoints_and_deliveries_are_reported(
    client: TestClient, migrated_engine: sa.Engine
) -> None:
    handlers = outbox_handlers(Settings(webhook_timeout_seconds=2))
    with webhook_receiver() as (base, received):
        received.by_path = {"/bad": 500, "/good": 200}
        with migrated_engine.begin() as conn:
            send_webhook(conn, url=f"{base}/bad", payload={"a": 1}, max_attempts=2)
            send_webhook(conn, url=f"{base}/good", payload={"a": 2})
        options = WorkerOptions(retry_base_seconds=0)
        Worker(migrated_engine, handlers=handlers, options=options).drain()
    endpoints = client.get("/api/v1/admin/webhooks/endpoints").json()
    assert [(e["endpoint"], e["failing"], e["attempts"]) for e in endpoints] == [
        (f"{base}/bad", True, 2),
        (f"{base}/good", False, 1),
    ]
    failing = client.get("/api/v1/admin/webhooks/endpoints", params={"failing": "true"}).json()
    assert [e["endpoint"] for e in failing] == [f"{base}/bad"]
    failures = client.get("/api/v1/admin/webhooks/deliveries", params={"ok": "false"}).json()
    assert [(d["attempt"], d["status_code"]) for d in failures["items"]] == [(2, 500), (1, 500)]
    failed_jobs = client.get("/api/v1/admin/jobs", params={"status": "failed"}).json()["items"]
    assert [job["kind"] for job in failed_jobs] == ["outbox.webhook"]


def test_administrators_only(
    anonymous_client: TestClient, make_user: Callable[..., object]
) -> None:
    assert anonymous_client.get("/api/v1/admin/jobs").status_code == 401
    make_user("ann")
    anonymous_client.base_url = "https://testserver"  # type: ignore[assignment]
    login(anonymous_client, "ann")
    for path in ("/api/v1/admin/jobs", "/api/v1/admin/webhooks/deliveries"):
        assert anonymous_client.get(path).status_code == 403
    assert anonymous_client.post("/api/v1/admin/jobs/1/retry").status_code == 403

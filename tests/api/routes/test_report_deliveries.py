"""Send a scheduled delivery now over HTTP: administrators only; the mails are queued as jobs
and the worker sends them to a real local SMTP server; the schedule is left as it was."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.jobs.worker import Worker
from engine.reports.delivery import DELIVERY_JOB
from engine.reports.delivery_mail import delivery_handlers
from engine.settings import Settings
from tests.conftest import login
from tests.engine.outbox.receivers import SmtpInbox
from tests.engine.reports.test_delivery import app, parts, queued, smtp  # noqa: F401

SEND = "/api/v1/apps/dlv/dashboards/ops/deliveries/{}/send"


def test_an_admin_sends_a_delivery_now(
    client: TestClient,
    app: dict[str, int],  # noqa: F811
    migrated_engine: sa.Engine,
    smtp: tuple[int, SmtpInbox],  # noqa: F811
) -> None:
    chain = queued(migrated_engine, DELIVERY_JOB)
    response = client.post(SEND.format("weekly"))
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": 3, "user_ids": sorted(app.values())}
    handlers = delivery_handlers(Settings(smtp_host="127.0.0.1", smtp_port=smtp[0]))
    assert Worker(migrated_engine, handlers=handlers).drain() == 3
    addresses = sorted(str(m["To"]) for m in smtp[1].messages)
    assert addresses == ["ace@example.test", "mia@example.test", "vic@example.test"]
    [mia] = [m for m in smtp[1].messages if m["To"] == "mia@example.test"]
    assert [name for name, _ in parts(mia)[2]] == ["regions.xlsx"]
    assert queued(migrated_engine, DELIVERY_JOB) == chain  # the schedule is unchanged
    audit = client.get("/api/v1/audit", params={"action": "report.delivery.send"}).json()
    assert [entry["target_key"] for entry in audit["items"]] == ["dlv.ops"]


def test_an_unknown_delivery_is_a_404(client: TestClient, app: dict[str, int]) -> None:  # noqa: F811
    response = client.post(SEND.format("daily"))
    assert (response.status_code, response.json()["code"]) == (404, "report.delivery-not-found")


def test_other_users_may_not_send(anonymous_client: TestClient, app: dict[str, int]) -> None:  # noqa: F811
    assert anonymous_client.post(SEND.format("weekly")).status_code == 401
    anonymous_client.base_url = "https://testserver"
    login(anonymous_client, "mia")  # a manager of the app, not an administrator
    response = anonymous_client.post(SEND.format("weekly"))
    assert (response.status_code, response.json()["code"]) == (403, "identity.permission-denied")

"""The forms API: list, read, versions, plan and publish one form, with problem+json errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.forms.spec import FormSpec
from engine.storage.form_tables import form_tables
from engine.storage.uow import UnitOfWork

URL = "/api/v1/apps/web/forms"


def definition(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"key": "lead", "label": "Lead", "fields": list(fields)}


FIRST = definition({"key": "name", "type": "text", "label": "Name"})
WITH_SCORE = definition(
    {"key": "name", "type": "text", "label": "Name"},
    {"key": "score", "type": "text", "label": "Score"},
)


@pytest.fixture
def app_installed(client: TestClient, uow_factory: Callable[[], UnitOfWork]) -> TestClient:
    with uow_factory() as uow:
        uow.definitions.install_app(key="web", name="Web", version="1.0.0", manifest={})
        uow.commit()
    return client


def test_publish_then_read_list_and_versions(app_installed: TestClient) -> None:
    client = app_installed
    created = client.put(f"{URL}/lead", json=FIRST)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["applied"] and body["version_to"] == 1 and "+ table web__lead" in body["lines"]
    assert client.put(f"{URL}/lead", json=WITH_SCORE).json()["version_to"] == 2
    assert [(f["key"], f["version"]) for f in client.get(URL).json()] == [("lead", 2)]
    current = client.get(f"{URL}/lead").json()
    assert current["version"] == 2 and len(current["definition"]["fields"]) == 2
    old = client.get(f"{URL}/lead", params={"version": 1}).json()["definition"]
    assert old == {"schema_version": 1, **FIRST}
    versions = client.get(f"{URL}/lead/versions").json()
    assert [v["version"] for v in versions] == [1, 2]


def test_plan_and_dry_run_write_nothing(app_installed: TestClient) -> None:
    client = app_installed
    planned = client.post(f"{URL}/lead/plan", json=FIRST).json()
    assert planned["version_to"] == 1 and not planned["applied"] and planned["problems"] == []
    dry = client.put(f"{URL}/lead", params={"dry_run": "true"}, json=FIRST).json()
    assert dry["lines"] == planned["lines"] and not dry["applied"]
    assert client.get(URL).json() == []
    assert client.get(f"{URL}/lead").status_code == 404


def test_plan_lists_the_records_a_type_change_would_lose(
    app_installed: TestClient, migrated_engine: sa.Engine
) -> None:
    client = app_installed
    client.put(f"{URL}/lead", json=WITH_SCORE)
    main = form_tables(app="web", form=FormSpec.model_validate(WITH_SCORE)).main
    now = datetime(2024, 1, 1, tzinfo=UTC)
    with migrated_engine.begin() as conn:
        for score in ("10", "high"):
            conn.execute(main.insert().values(score=score, created_at=now, updated_at=now))
    numeric = definition(
        {"key": "name", "type": "text", "label": "Name"},
        {"key": "score", "type": "number", "label": "Score"},
    )
    planned = client.post(f"{URL}/lead/plan", json=numeric).json()
    assert [(p["code"], p["path"]) for p in planned["problems"]] == [
        ("storage.value-unparseable", "/fields/1/type")
    ]
    refused = client.put(f"{URL}/lead", json=numeric)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["problems"][0]["code"] == "storage.value-unparseable"
    assert client.get(f"{URL}/lead").json()["version"] == 1


def test_bad_bodies_are_problems(app_installed: TestClient) -> None:
    client = app_installed
    shape = client.put(f"{URL}/lead", json={"key": "lead", "fields": "nope"})
    assert shape.status_code == 422 and shape.json()["code"] == "definition.invalid"
    other = client.put(f"{URL}/other", json=FIRST)
    assert other.status_code == 422
    assert [(p["code"], p["path"]) for p in other.json()["problems"]] == [
        ("form.key-mismatch", "/key")
    ]
    assert client.put("/api/v1/apps/nope/forms/lead", json=FIRST).status_code == 404


def test_stale_base_version_is_409(app_installed: TestClient) -> None:
    client = app_installed
    client.put(f"{URL}/lead", json=FIRST)
    stale = client.put(f"{URL}/lead", params={"base_version": 0}, json=WITH_SCORE)
    assert stale.status_code == 409 and stale.json()["code"] == "storage.stale-version"
    fresh = client.put(f"{URL}/lead", params={"base_version": 1}, json=WITH_SCORE)
    assert fresh.status_code == 200 and fresh.json()["version_to"] == 2

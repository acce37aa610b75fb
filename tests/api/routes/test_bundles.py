"""Bundle import (plan, apply) and export over HTTP, with problem+json errors."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from engine.bundles import load_bundle
from tests.support import FIXTURES, zip_folder

ZIP = {"Content-Type": "application/zip"}


@pytest.fixture
def service_desk_zip() -> bytes:
    return zip_folder(FIXTURES / "service_desk")


def test_plan_shows_changes_and_writes_nothing(client: TestClient, service_desk_zip: bytes) -> None:
    response = client.post("/api/v1/bundles/plan", content=service_desk_zip, headers=ZIP)

    assert response.status_code == 200
    body = response.json()
    assert body["app"] == "service_desk" and body["applied"] is False and body["noop"] is False
    assert {"kind": "forms", "key": "ticket", "action": "create"}.items() <= next(
        i for i in body["items"] if i["key"] == "ticket"
    ).items()
    assert client.get("/api/v1/apps").json() == []


def test_import_applies_then_repeats_as_noop(client: TestClient, service_desk_zip: bytes) -> None:
    first = client.post("/api/v1/bundles/import", content=service_desk_zip, headers=ZIP)
    second = client.post("/api/v1/bundles/import", content=service_desk_zip, headers=ZIP)

    assert first.status_code == 200 and first.json()["applied"] is True
    assert second.status_code == 200
    assert second.json()["noop"] is True and second.json()["applied"] is False
    apps = client.get("/api/v1/apps").json()
    assert [(a["key"], a["version"]) for a in apps] == [("service_desk", "1.2.0-beta.1")]


def test_export_returns_a_loadable_canonical_zip(
    client: TestClient, service_desk_zip: bytes
) -> None:
    client.post("/api/v1/bundles/import", content=service_desk_zip, headers=ZIP)

    response = client.get("/api/v1/apps/service_desk/export")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    exported = load_bundle(io.BytesIO(response.content))
    assert exported.counts() == load_bundle(FIXTURES / "service_desk").counts()


def test_export_of_unknown_app_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/apps/nope/export")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "storage.app-not-found"


def test_broken_pack_reports_every_problem_with_paths(client: TestClient) -> None:
    broken = zip_folder(
        FIXTURES / "service_desk",
        extra={"forms/bad.yaml": b"key: bad\nfields: [\n", "forms/odd.yaml": b"key: odd\nfoo: 1\n"},
    )

    response = client.post("/api/v1/bundles/import", content=broken, headers=ZIP)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problems = {(p["source"], p["code"]) for p in response.json()["problems"]}
    assert ("forms/bad.yaml", "bundle.yaml-syntax") in problems
    assert ("forms/odd.yaml", "bundle.unknown-key") in problems
    assert client.get("/api/v1/apps").json() == []


def test_zip_slip_is_refused(client: TestClient) -> None:
    hostile = zip_folder(FIXTURES / "service_desk", extra={"../evil.yaml": b"x: 1\n"})

    response = client.post("/api/v1/bundles/import", content=hostile, headers=ZIP)

    assert response.status_code == 422
    assert "bundle.path-traversal" in {p["code"] for p in response.json()["problems"]}


def test_oversized_upload_is_413(client: TestClient) -> None:
    response = client.post("/api/v1/bundles/import", content=b"0" * 2_000_001, headers=ZIP)

    assert response.status_code == 413
    assert response.json()["code"] == "api.payload-too-large"

"""Health, JSON Schemas and the OpenAPI document."""

from __future__ import annotations

import jsonschema
from fastapi.testclient import TestClient

from engine.schemas import KINDS


def test_health_reports_backend_and_migration(client: TestClient, backend: str) -> None:
    body = client.get("/api/v1/health").json()

    assert body["status"] == "ok"
    assert body["database"] == backend
    assert body["migrations"]


def test_every_kind_has_a_valid_schema(client: TestClient) -> None:
    kinds = client.get("/api/v1/schemas").json()["kinds"]

    assert set(kinds) == set(KINDS) >= {"bundle", "form", "flow", "report", "dashboard"}
    for kind in kinds:
        schema = client.get(f"/api/v1/schemas/{kind}").json()
        jsonschema.Draft202012Validator.check_schema(schema)


def test_unknown_schema_kind_is_a_problem(client: TestClient) -> None:
    response = client.get("/api/v1/schemas/widget")

    assert response.status_code == 404
    assert response.json()["code"] == "schema.unknown-kind"


def test_openapi_documents_routes_and_problems(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()

    paths = document["paths"]
    assert {
        "/api/v1/health",
        "/api/v1/schemas/{kind}",
        "/api/v1/bundles/import",
        "/api/v1/bundles/plan",
        "/api/v1/apps/{app}/export",
    } <= set(paths)
    import_op = paths["/api/v1/bundles/import"]["post"]
    assert "application/zip" in import_op["requestBody"]["content"]
    assert "application/problem+json" in import_op["responses"]["422"]["content"]
    assert "ProblemOut" in document["components"]["schemas"]


# logout is idempotent: signing out when signed out is a 204, not an error
PUBLIC = {
    "/api/v1/health",
    "/api/v1/schemas",
    "/api/v1/schemas/{kind}",
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    # anonymous on purpose: public links guard themselves by token and rate limits
    "/api/v1/public/{token}",
    "/api/v1/public/{token}/files",
    "/api/v1/public/track/{tracking_token}",
    "/api/v1/public/answer/{token}",
    # inbound webhooks authenticate by their per-flow secret (403 without it)
    "/api/v1/hooks/{app}/{flow}",
}


def _concrete(path: str) -> str:
    return path.replace("{app}", "rec").replace("{form}", "ticket").replace("{kind}", "form")


def test_every_data_route_refuses_anonymous_callers(anonymous_client: TestClient) -> None:
    document = anonymous_client.get("/api/v1/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        if path in PUBLIC:
            continue
        for method in operations:
            url = _concrete(path).replace("{", "").replace("}", "")
            response = anonymous_client.request(method.upper(), url)
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked > 20


def test_data_routes_refuse_signed_in_non_admins(
    anonymous_client: TestClient, make_user: object, tmp_path: object
) -> None:
    from tests.conftest import login

    make_user("agent")  # type: ignore[operator]
    anonymous_client.base_url = "https://testserver"  # type: ignore[assignment]
    login(anonymous_client, "agent")

    response = anonymous_client.get("/api/v1/apps")

    assert response.status_code == 403
    assert response.json()["code"] == "identity.permission-denied"

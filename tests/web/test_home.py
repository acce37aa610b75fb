"""The home page lists installed apps and their definitions, in the browser's language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import FIXTURES, zip_folder


def test_home_without_apps_says_how_to_import(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert "tangram import" in response.text


def test_home_lists_an_imported_app_in_chinese(client: TestClient) -> None:
    client.post(
        "/api/v1/bundles/import",
        content=zip_folder(FIXTURES / "service_desk"),
        headers={"Content-Type": "application/zip"},
    )

    response = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})

    assert response.status_code == 200
    assert 'id="app-service_desk"' in response.text
    assert "服务台" in response.text and "工单" in response.text

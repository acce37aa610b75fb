"""Organisation API: admins manage users, departments and grants; others get 403."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import login


def _install_desk(engine: sa.Engine, tmp_path: Path) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = tmp_path / "desk"
    (folder / "roles").mkdir(parents=True)
    (folder / "bundle.yaml").write_text(
        'key: desk\nname: Desk\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n', encoding="utf-8"
    )
    (folder / "roles" / "agent.yaml").write_text("key: agent\nlabel: Agent\n", encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))


def test_users_crud_and_password(admin_client: TestClient) -> None:
    created = admin_client.post(
        "/api/v1/org/users",
        json={"username": "ann", "display_name": "Ann", "password": "long enough pw"},
    )
    assert created.status_code == 201 and created.json()["has_password"]
    user_id = created.json()["id"]
    duplicate = admin_client.post(
        "/api/v1/org/users", json={"username": "ann", "display_name": "A"}
    )
    assert duplicate.status_code == 409
    weak = admin_client.post(
        "/api/v1/org/users", json={"username": "bob", "display_name": "Bob", "password": "short"}
    )
    assert weak.status_code == 422 and weak.json()["errors"][0]["code"] == "identity.weak-password"
    patched = admin_client.patch(f"/api/v1/org/users/{user_id}", json={"email": "ann@example.com"})
    assert patched.json()["email"] == "ann@example.com" and patched.json()["active"]
    put = admin_client.put(
        f"/api/v1/org/users/{user_id}/password", json={"password": "another pw 2"}
    )
    assert put.status_code == 204
    names = [u["username"] for u in admin_client.get("/api/v1/org/users").json()]
    assert names == ["ann", "root"]


def test_department_tree_moves_and_members(
    admin_client: TestClient, make_user: Callable[..., object]
) -> None:
    ann = make_user("ann")
    ids = {}
    for key, parent in (("service", None), ("north", "service"), ("sales", None)):
        response = admin_client.post(
            "/api/v1/org/departments",
            json={"key": key, "name": {"en": key, "zh": key}, "parent_id": ids.get(parent)},
        )
        assert response.status_code == 201
        ids[key] = response.json()["id"]
    cycle = admin_client.patch(
        f"/api/v1/org/departments/{ids['service']}", json={"parent_id": ids["north"]}
    )
    assert cycle.status_code == 422
    assert cycle.json()["errors"][0]["code"] == "identity.department-cycle"
    moved = admin_client.patch(
        f"/api/v1/org/departments/{ids['north']}",
        json={"parent_id": ids["sales"], "head_user_id": ann.id},  # type: ignore[attr-defined]
    )
    assert moved.json()["parent_id"] == ids["sales"] and moved.json()["head_user_id"] == ann.id  # type: ignore[attr-defined]
    top = admin_client.patch(f"/api/v1/org/departments/{ids['north']}", json={"parent_id": None})
    assert top.json()["parent_id"] is None
    member = f"/api/v1/org/departments/{ids['north']}/members/{ann.id}"  # type: ignore[attr-defined]
    assert admin_client.put(member).status_code == 204
    assert admin_client.put(member).status_code == 204  # idempotent
    listed = {d["key"]: d for d in admin_client.get("/api/v1/org/departments").json()}
    assert listed["north"]["members"] == [ann.id]  # type: ignore[attr-defined]
    assert admin_client.delete(member).status_code == 204


def test_grants_to_users_and_departments(
    admin_client: TestClient,
    make_user: Callable[..., object],
    migrated_engine: sa.Engine,
    tmp_path: Path,
) -> None:
    _install_desk(migrated_engine, tmp_path)
    ann = make_user("ann")
    dept = admin_client.post("/api/v1/org/departments", json={"key": "svc", "name": "Svc"}).json()
    grants = [
        {"app": "desk", "role": "agent", "user_id": ann.id},  # type: ignore[attr-defined]
        {"app": "desk", "role": "agent", "department_id": dept["id"]},
    ]
    for grant in grants:
        assert admin_client.post("/api/v1/org/grants", json=grant).status_code == 204
    assert admin_client.post("/api/v1/org/grants", json=grants[0]).status_code == 409
    roles = {(r["app"], r["key"]): r for r in admin_client.get("/api/v1/org/roles").json()}
    assert roles[("desk", "agent")]["users"] == [ann.id]  # type: ignore[attr-defined]
    assert roles[("desk", "agent")]["departments"] == [dept["id"]]
    assert len(roles[("", "admin")]["users"]) == 1
    unknown = admin_client.post(
        "/api/v1/org/grants",
        json={"app": "desk", "role": "ghost", "user_id": ann.id},  # type: ignore[attr-defined]
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "identity.no-role"
    assert admin_client.post("/api/v1/org/grants/revoke", json=grants[0]).status_code == 204
    roles = {(r["app"], r["key"]): r for r in admin_client.get("/api/v1/org/roles").json()}
    assert roles[("desk", "agent")]["users"] == []


def test_non_admins_are_refused(auth_settings: object, make_user: Callable[..., object]) -> None:
    make_user("ann")
    with TestClient(create_app(auth_settings), base_url="https://testserver") as client:  # type: ignore[arg-type]
        assert client.get("/api/v1/org/users").status_code == 401
        login(client, "ann")
        for method, path in (
            ("GET", "/api/v1/org/users"),
            ("POST", "/api/v1/org/users"),
            ("GET", "/api/v1/org/departments"),
            ("POST", "/api/v1/org/grants"),
            ("GET", "/api/v1/audit"),
        ):
            body = {"username": "x", "display_name": "x"} if method == "POST" else None
            response = client.request(method, path, json=body)
            assert response.status_code in (403, 422), (path, response.text)
            if response.status_code == 403:
                assert response.json()["code"] == "identity.permission-denied"
        grant = {"app": None, "role": "admin", "user_id": 1}
        assert client.post("/api/v1/org/grants", json=grant).status_code == 403

"""Attachment downloads through records, per actor: only readable records, visible fields and
files that are in the field's value; everything else is the same 404 (no IDOR)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.storage.uow import UnitOfWork
from tests.engine.public.world import FORMS, World, build_world

TICKETS = f"{FORMS}/ticket/records"


@pytest.fixture
def world(
    anonymous_client: TestClient,
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> World:
    made = build_world(anonymous_client, migrated_engine, uow_factory, tmp_path / "acc")
    files = {
        name: made.upload(f"{name}.bin", name.encode() * 10)
        for name in ("f1", "f2", "f3", "f4", "f5")
    }
    made.files = files
    made.ids["t_agent"] = made.create(
        "agent",
        "ticket",
        {"subject": "agent", "photos": [files["f1"]["id"]], "contract": files["f2"]["id"]},
    )
    made.ids["t_eng"] = made.create(
        "engineer", "ticket", {"subject": "eng", "photos": [files["f4"]["id"]]}
    )
    patched = made.call(
        "admin",
        "PATCH",
        f"{TICKETS}/{made.ids['t_eng']}",
        json={"contract": files["f5"]["id"], "version": 1},
    )
    assert patched.status_code == 200, patched.text
    return made


def _get(world: World, who: str, ticket: str, field: str, file: str) -> Any:
    file_id = world.files[file]["id"]
    url = f"{TICKETS}/{world.ids[ticket]}/files/{field}/{file_id}"
    return world.call(who, "GET", url)


def _missing(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "record.file-not-found"


def test_readers_of_the_record_and_field_download(world: World) -> None:
    for who in ("admin", "agent", "agent2"):
        got = _get(world, who, "t_agent", "photos", "f1")
        assert got.status_code == 200, got.text
        assert got.content == b"f1" * 10
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert _get(world, who, "t_agent", "contract", "f2").status_code == 200
    assert _get(world, "engineer", "t_eng", "photos", "f4").content == b"f4" * 10
    assert _get(world, "admin", "t_eng", "contract", "f5").status_code == 200


def test_everything_else_is_not_found(world: World) -> None:
    for who in ("outsider", "engineer"):  # records outside their scope
        _missing(_get(world, who, "t_agent", "photos", "f1"))
        _missing(_get(world, who, "t_agent", "contract", "f2"))
    _missing(_get(world, "engineer", "t_eng", "contract", "f5"))  # hidden field
    _missing(_get(world, "agent", "t_agent", "photos", "f2"))  # file of another field
    _missing(_get(world, "agent", "t_agent", "photos", "f3"))  # stored, on no record
    _missing(_get(world, "agent", "t_agent", "photos", "f4"))  # on another record
    _missing(_get(world, "agent", "t_agent", "subject", "f1"))  # not a file field
    _missing(_get(world, "agent", "t_agent", "nope", "f1"))
    guessed = world.call("agent", "GET", f"{TICKETS}/{world.ids['t_agent']}/files/photos/xyz")
    _missing(guessed)
    missing = world.call("agent", "GET", f"{TICKETS}/999999/files/photos/xyz")
    _missing(missing)
    # Non-admins never reach the raw file store.
    raw = world.call("agent", "GET", f"/api/v1/files/{world.files['f1']['id']}")
    assert raw.status_code == 403
    world.api.headers.pop("Authorization", None)
    assert world.api.get(f"{TICKETS}/{world.ids['t_agent']}/files/photos/x").status_code == 401


def test_deleted_records_hide_their_files(world: World) -> None:
    deleted = world.call("agent", "DELETE", f"{TICKETS}/{world.ids['t_agent']}")
    assert deleted.status_code == 200, deleted.text
    _missing(_get(world, "agent", "t_agent", "photos", "f1"))
    _missing(_get(world, "admin", "t_agent", "photos", "f1"))


def test_deletes_and_restores_reach_the_audit_log(world: World) -> None:
    ticket = world.ids["t_agent"]
    assert world.call("agent", "DELETE", f"{TICKETS}/{ticket}").status_code == 200
    assert world.call("agent", "POST", f"{TICKETS}/{ticket}/restore").status_code == 200
    entries = world.call(
        "admin", "GET", "/api/v1/audit", params={"target_key": f"acc.ticket#{ticket}"}
    ).json()["items"]
    assert [(e["action"], e["actor_id"]) for e in entries] == [
        ("record.restore", world.users["agent"]),
        ("record.delete", world.users["agent"]),
    ]
    assert world.call("agent", "GET", "/api/v1/audit").status_code == 403

"""Relation pickers per actor: candidates are the target's records in the actor's read scope,
searched and labelled only through fields the actor can see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.storage.uow import UnitOfWork
from tests.engine.public.world import FORMS, World, build_world

OPTIONS = f"{FORMS}/ticket/fields/customer/options"


@pytest.fixture
def world(
    anonymous_client: TestClient,
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> World:
    made = build_world(anonymous_client, migrated_engine, uow_factory, tmp_path / "acc")
    for key, who, name, note in (
        ("c_support", "agent", "Acme support", None),
        ("c_support2", "agent2", "Beta support", None),
        ("c_sales", "outsider", "Sales lead", None),
        ("c_eng", "engineer", "Engineer's own", "secret eng"),
        ("c_admin", "admin", "Zeta", "secret vip"),
    ):
        data = {"name": name} | ({"vip_note": note} if note and who == "admin" else {})
        made.ids[key] = made.create(who, "customer", data)
    patched = made.call(
        "admin",
        "PATCH",
        f"{FORMS}/customer/records/{made.ids['c_eng']}",
        json={"vip_note": "secret eng", "version": 1},
    )
    assert patched.status_code == 200, patched.text
    return made


def _options(world: World, who: str, **params: object) -> dict[str, str]:
    response = world.call(who, "GET", OPTIONS, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["form"] == "acc.customer"
    return {item["label"]: item["id"] for item in response.json()["items"]}


def _ids(world: World, *keys: str) -> set[int]:
    return {world.ids[key] for key in keys}


def test_each_actor_picks_from_its_read_scope(world: World) -> None:
    every = _options(world, "admin")
    assert set(every.values()) == _ids(
        world, "c_support", "c_support2", "c_sales", "c_eng", "c_admin"
    )
    assert every["Zeta"] == world.ids["c_admin"]
    assert set(_options(world, "agent").values()) == _ids(world, "c_support", "c_support2")
    assert set(_options(world, "outsider").values()) == _ids(world, "c_sales")
    assert _options(world, "engineer") == {"Engineer's own": world.ids["c_eng"]}


def test_search_never_matches_hidden_fields(world: World) -> None:
    assert set(_options(world, "admin", q="secret").values()) == _ids(world, "c_eng", "c_admin")
    assert _options(world, "engineer", q="secret") == {}
    assert set(_options(world, "engineer", q="own").values()) == _ids(world, "c_eng")
    assert set(_options(world, "agent", q="Beta").values()) == _ids(world, "c_support2")


def test_pages_follow_the_cursor(world: World) -> None:
    first = world.call("admin", "GET", OPTIONS, params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = world.call(
        "admin", "GET", OPTIONS, params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    seen = {i["id"] for i in first["items"]} | {i["id"] for i in second["items"]}
    assert len(seen) == 4


def test_unknown_fields_and_signed_out(world: World) -> None:
    response = world.call("agent", "GET", f"{FORMS}/ticket/fields/subject/options")
    assert response.status_code == 404 and response.json()["code"] == "record.not-a-relation"
    assert world.call("agent", "GET", f"{FORMS}/nope/fields/customer/options").status_code == 404
    world.api.headers.pop("Authorization", None)
    assert world.api.get(OPTIONS).status_code == 401


def _relation_problem(response: object, field: str = "customer") -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    errors = response.json()["errors"]  # type: ignore[attr-defined]
    assert [(e["path"], e["code"]) for e in errors] == [(field, "record.missing-relation")]


def test_relations_are_written_only_to_readable_targets(world: World) -> None:
    tickets = f"{FORMS}/ticket/records"
    for who, customer in (("agent", "c_sales"), ("agent", "c_eng"), ("engineer", "c_support")):
        data = {"subject": "x", "customer": world.ids[customer]}
        _relation_problem(world.call(who, "POST", tickets, json=data))
    for who, customer in (("agent", "c_support2"), ("engineer", "c_eng"), ("admin", "c_sales")):
        data = {"subject": "ok", "customer": world.ids[customer]}
        assert world.call(who, "POST", tickets, json=data).status_code == 201
    mine = world.create("agent", "ticket", {"subject": "mine"})
    patch = {"customer": world.ids["c_sales"], "version": 1}
    _relation_problem(world.call("agent", "PATCH", f"{tickets}/{mine}", json=patch))
    bulk = {"ids": [mine], "changes": {"customer": world.ids["c_sales"]}}
    refused = world.call("agent", "POST", f"{tickets}/bulk-update", json=bulk)
    assert refused.status_code in (404, 422) and refused.json()["applied"] is False
    record = world.call("agent", "GET", f"{tickets}/{mine}").json()
    assert record["customer"] is None and record["version"] == 1


def test_list_search_never_matches_hidden_fields(world: World) -> None:
    """The records list's full-text search (FTS5 on SQLite, trigram/tsvector on PostgreSQL)
    matches only the columns the actor may see."""

    def found(who: str, q: str) -> set[int]:
        response = world.call(who, "GET", f"{FORMS}/customer/records", params={"q": q})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert found("admin", "secret") == _ids(world, "c_eng", "c_admin")
    assert found("engineer", "secret") == set()
    assert found("engineer", "own") == _ids(world, "c_eng")

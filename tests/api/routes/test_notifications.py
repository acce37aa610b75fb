"""GET /notifications (mine, unread first) and POST /notifications/{id}/read over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.outbox import notify
from engine.storage.uow import UnitOfWork
from tests.conftest import login


def _notify(db: sa.Engine, user_id: int, *subjects: str) -> None:
    with db.begin() as conn:
        for subject in subjects:
            notify(conn, user_ids=[user_id], subject=subject, body="b", channels=["in_app"])


def _user_id(uow_factory: Callable[[], UnitOfWork], username: str) -> int:
    with uow_factory() as uow:
        return uow.users.get_by_username(username=username).id


def test_my_notifications_unread_first_and_mark_read(
    client: TestClient, migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    me = _user_id(uow_factory, "tester")
    _notify(migrated_engine, me, "first", "second", "third")
    items = client.get("/api/v1/notifications").json()["items"]
    assert [item["subject"] for item in items] == ["third", "second", "first"]
    first_id = items[-1]["id"]
    response = client.post(f"/api/v1/notifications/{first_id}/read")
    assert response.status_code == 200, response.text
    assert response.json()["read_at"] is not None
    items = client.get("/api/v1/notifications").json()["items"]
    assert [item["subject"] for item in items] == ["third", "second", "first"]
    assert items[-1]["read_at"] is not None
    unread = client.get("/api/v1/notifications", params={"unread": "true"}).json()["items"]
    assert [item["subject"] for item in unread] == ["third", "second"]
    client.post(f"/api/v1/notifications/{items[0]['id']}/read")
    after = client.get("/api/v1/notifications").json()["items"]
    assert [item["subject"] for item in after] == ["second", "third", "first"]


def test_other_users_notifications_stay_hidden(
    client: TestClient,
    anonymous_client: TestClient,
    migrated_engine: sa.Engine,
    make_user: Callable[..., object],
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    make_user("ann")
    ann = _user_id(uow_factory, "ann")
    _notify(migrated_engine, ann, "for ann")
    assert client.get("/api/v1/notifications").json()["items"] == []
    with migrated_engine.connect() as conn:
        from engine.outbox import list_notifications

        [theirs] = list_notifications(conn, user_id=ann)
    response = client.post(f"/api/v1/notifications/{theirs.id}/read")
    assert response.status_code == 404
    assert response.json()["code"] == "outbox.notification-not-found"


def test_signed_in_users_only(
    anonymous_client: TestClient, make_user: Callable[..., object]
) -> None:
    response = anonymous_client.get("/api/v1/notifications")
    assert response.status_code == 401
    make_user("bob")
    anonymous_client.base_url = "https://testserver"  # type: ignore[assignment]
    login(anonymous_client, "bob")
    assert anonymous_client.get("/api/v1/notifications").json() == {"items": []}

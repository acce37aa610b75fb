"""Definition store, bundle files, audit log and identity stores on a real database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError
from engine.storage.uow import UnitOfWork

FORM = {"key": "ticket", "fields": [{"key": "title", "type": "text"}]}


def _digest(body: object) -> str:
    return hashlib.sha256(repr(body).encode()).hexdigest()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def uow(conn: sa.Connection) -> Iterator[UnitOfWork]:
    with UnitOfWork(conn, clock=Clock()) as unit:
        unit.definitions.install_app(
            key="aftersales", name={"en": "After-sales"}, version="0.1.0", manifest={"k": 1}
        )
        yield unit


def _publish(uow: UnitOfWork, body: dict[str, object], actor: int | None = None) -> object:
    return uow.definitions.publish(
        app="aftersales", kind="form", key="ticket", body=body, digest=_digest(body), actor=actor
    )


def test_install_app_then_update(uow: UnitOfWork) -> None:
    first = uow.definitions.get_app(key="aftersales")
    updated = uow.definitions.install_app(
        key="aftersales", name="After-sales", version="0.2.0", manifest={}
    )
    assert updated.version == "0.2.0"
    assert updated.installed_at == first.installed_at
    assert updated.updated_at > first.updated_at
    assert updated.installed_at.tzinfo is not None
    assert [app.key for app in uow.definitions.list_apps()] == ["aftersales"]


def test_publish_creates_versions_only_when_the_digest_changes(uow: UnitOfWork) -> None:
    user = uow.users.create(username="designer", display_name="Designer")
    first = _publish(uow, FORM, actor=user.id)
    again = _publish(uow, FORM)
    changed = {**FORM, "label": "Ticket"}
    second = _publish(uow, changed)
    assert (first.created, again.created, second.created) == (True, False, True)
    assert (first.version.version, second.version.version) == (1, 2)
    assert first.version.created_by == user.id
    current = uow.definitions.get_current(app="aftersales", kind="form", key="ticket")
    assert current.body == changed
    old = uow.definitions.get_version(app="aftersales", kind="form", key="ticket", version=1)
    assert old.body == FORM
    versions = uow.definitions.list_versions(app="aftersales", kind="form", key="ticket")
    assert [v.version for v in versions] == [1, 2]
    (listed,) = uow.definitions.list_definitions(app="aftersales")
    assert (listed.key, listed.current_version, listed.current_digest) == (
        "ticket",
        2,
        _digest(changed),
    )


def test_retire_hides_and_publish_revives(uow: UnitOfWork) -> None:
    _publish(uow, FORM)
    uow.definitions.retire(app="aftersales", kind="form", key="ticket")
    assert uow.definitions.list_definitions(app="aftersales") == []
    assert len(uow.definitions.list_definitions(app="aftersales", include_retired=True)) == 1
    revived = _publish(uow, FORM)
    assert not revived.created
    assert [d.key for d in uow.definitions.list_definitions(kind="form")] == ["ticket"]


def test_missing_definition_and_app(uow: UnitOfWork) -> None:
    with pytest.raises(NotFoundError) as caught:
        uow.definitions.get_current(app="aftersales", kind="form", key="nope")
    assert caught.value.code == "storage.definition-not-found"
    with pytest.raises(NotFoundError) as caught:
        uow.definitions.get_app(key="nope")
    assert caught.value.code == "storage.app-not-found"


def test_publish_into_an_unknown_app_is_a_foreign_key_conflict(uow: UnitOfWork) -> None:
    with pytest.raises(ConflictError) as caught:
        uow.definitions.publish(app="ghost", kind="form", key="x", body={}, digest="0", actor=None)
    assert caught.value.code == "storage.foreign-key-violation"


def test_bundle_files_round_trip_bytes(uow: UnitOfWork) -> None:
    content = "名称,数量\n".encode() + bytes(range(256))
    stored = uow.bundle_files.put(app="aftersales", path="data/items.csv", content=content)
    assert stored.digest == hashlib.sha256(content).hexdigest()
    uow.bundle_files.put(app="aftersales", path="demo.yaml", content=b"a: 1\n")
    uow.bundle_files.put(app="aftersales", path="demo.yaml", content=b"a: 2\n")
    assert uow.bundle_files.get(app="aftersales", path="data/items.csv").content == content
    listing = uow.bundle_files.list_files(app="aftersales")
    assert [(f.path, f.size, f.content) for f in listing] == [
        ("data/items.csv", len(content), None),
        ("demo.yaml", 5, None),
    ]
    assert uow.bundle_files.delete(app="aftersales", path="demo.yaml")
    with pytest.raises(NotFoundError):
        uow.bundle_files.get(app="aftersales", path="demo.yaml")


def test_audit_log_record_and_query(uow: UnitOfWork) -> None:
    first = uow.audit.record(
        action="definition.publish", target_kind="form", target_key="aftersales.ticket"
    )
    second = uow.audit.record(
        action="user.create", target_kind="user", target_key="ann", actor=7, detail={"a": [1]}
    )
    entries = uow.audit.query()
    assert [e.id for e in entries] == [second, first]
    assert entries[0].detail == {"a": [1]}
    assert [e.id for e in uow.audit.query(actor=7)] == [second]
    assert [e.id for e in uow.audit.query(target_kind="form")] == [first]
    assert [e.id for e in uow.audit.query(before_id=second)] == [first]
    assert [e.id for e in uow.audit.query(since=entries[0].at)] == [second]
    assert [e.id for e in uow.audit.query(until=entries[0].at)] == [first]


def test_users_departments_roles(uow: UnitOfWork) -> None:
    admin = uow.users.create(username="admin", display_name="Admin", password_hash="h")
    assert uow.users.get_by_username(username="admin") == admin
    assert (admin.status, admin.version) == ("active", 1)
    root = uow.departments.create(key="hq", name={"en": "HQ", "zh": "总部"}, head_user_id=admin.id)
    child = uow.departments.create(key="service", name="Service", parent_id=root.id)
    uow.departments.add_member(department_id=child.id, user_id=admin.id, is_primary=True)
    assert [d.key for d in uow.departments.list_departments()] == ["hq", "service"]
    assert uow.departments.list_members(department_id=child.id) == [admin.id]
    global_role = uow.roles.create(key="admin", label="Administrator")
    app_role = uow.roles.create(key="agent", label={"en": "Agent"}, app="aftersales")
    uow.roles.assign(role_id=global_role.id, user_id=admin.id)
    assert [r.key for r in uow.roles.list_roles()] == ["admin"]
    assert [r.key for r in uow.roles.list_roles(app="aftersales")] == ["admin", "agent"]
    assert uow.roles.list_user_roles(user_id=admin.id) == [global_role]
    assert app_role.app == "aftersales"
    with pytest.raises(NotFoundError) as caught:
        uow.users.get_by_username(username="nobody")
    assert caught.value.code == "storage.user-not-found"


@pytest.mark.parametrize("app", [None, "aftersales"])
def test_role_keys_are_unique_per_scope(uow: UnitOfWork, app: str | None) -> None:
    uow.roles.create(key="agent", label="Agent", app=app)
    with pytest.raises(ConflictError) as caught:
        uow.roles.create(key="agent", label="Agent", app=app)
    assert caught.value.code == "storage.unique-violation"
    assert caught.value.constraint == ("uq_roles_key" if app is None else "uq_roles_app_key")

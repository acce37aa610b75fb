"""Data versions bumped by record changes, and the result cache keyed by them (real databases)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa

from engine.forms.events import RecordChange
from engine.identity.actor import Actor
from engine.reports.cache import (
    CacheKey,
    DataVersionBumper,
    ResultCache,
    actor_scope,
    read_data_versions,
)
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def change(form: str, record_id: int = 1, app: str = "svc") -> RecordChange:
    record = StoredRecord(
        id=record_id,
        version=1,
        created_at=NOW,
        created_by=None,
        updated_at=NOW,
        updated_by=None,
        owner_id=None,
        deleted_at=None,
        values={},
    )
    return RecordChange(
        app=app,
        form=form,
        record_id=record_id,
        kind="created",
        before=None,
        after=record,
        changed=frozenset(),
        actor_id=None,
        source="api",
    )


def test_unknown_forms_are_at_version_zero(conn: sa.Connection) -> None:
    assert read_data_versions(conn, app="svc", forms=["ticket", "device"]) == {
        "device": 0,
        "ticket": 0,
    }


def test_one_bump_per_transaction_and_form(conn: sa.Connection) -> None:
    bumper = DataVersionBumper()
    with UnitOfWork(conn) as uow:
        for record_id in range(5):
            bumper(uow, change("ticket", record_id))
        bumper(uow, change("device"))
        uow.commit()
        bumper(uow, change("ticket"))  # the next transaction of the same unit
        uow.commit()
    assert read_data_versions(conn, app="svc", forms=["ticket", "device", "team"]) == {
        "device": 1,
        "team": 0,
        "ticket": 2,
    }


def test_rolled_back_write_leaves_the_version(conn: sa.Connection) -> None:
    bumper = DataVersionBumper()
    with UnitOfWork(conn) as uow:
        bumper(uow, change("ticket"))
        uow.rollback()
        bumper(uow, change("ticket"))  # a new transaction: bumps again, once
        uow.commit()
    assert read_data_versions(conn, app="svc", forms=["ticket"]) == {"ticket": 1}


def test_apps_are_separate(conn: sa.Connection) -> None:
    bumper = DataVersionBumper()
    with UnitOfWork(conn) as uow:
        bumper(uow, change("ticket", app="other"))
        uow.commit()
    assert read_data_versions(conn, app="svc", forms=["ticket"]) == {"ticket": 0}


def test_concurrent_writers_all_count(uow_factory: object, migrated_engine: sa.Engine) -> None:
    """Eight threads, each committing its own transactions: no bump is lost."""
    bumper = DataVersionBumper()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(5):
                with UnitOfWork(migrated_engine) as uow:
                    bumper(uow, change("ticket"))
                    bumper(uow, change("ticket"))
                    uow.commit()
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with migrated_engine.connect() as conn:
        assert read_data_versions(conn, app="svc", forms=["ticket"]) == {"ticket": 40}


def test_cache_keys_follow_versions_and_scope() -> None:
    cache = ResultCache(max_entries=2)
    admin = Actor(user_id=1, username="a", is_admin=True)
    agent = Actor(user_id=2, username="b", roles={"svc": frozenset({"agent"})})

    def key(actor: Actor, version: int, region: str = "east") -> CacheKey:
        return CacheKey.build(
            app="svc",
            query={"key": "frt"},
            parameters={"region": region},
            scope=actor_scope(actor),
            versions={"ticket": version},
        )

    cache.put(key(admin, 1), "r1")
    assert cache.get(key(admin, 1)) == "r1"
    assert cache.get(key(admin, 2)) is None  # a write happened
    assert cache.get(key(agent, 1)) is None  # another scope
    assert cache.get(key(admin, 1, "north")) is None  # other parameters
    assert (cache.hits, cache.misses) == (1, 3)


def test_cache_evicts_least_recently_used() -> None:
    cache = ResultCache(max_entries=2)
    keys = [
        CacheKey.build(app="a", query=i, parameters={}, scope="s", versions={}) for i in range(3)
    ]
    cache.put(keys[0], 0)
    cache.put(keys[1], 1)
    cache.get(keys[0])
    cache.put(keys[2], 2)
    assert cache.get(keys[1]) is None and cache.get(keys[0]) == 0 and len(cache) == 2

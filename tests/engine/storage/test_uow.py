"""The unit of work on real databases: rollback by default, commit, conflict translation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError
from engine.storage.conflicts import ConstraintConflict
from engine.storage.tables import users
from engine.storage.uow import UnitOfWork


def _count_users(engine: sa.Engine, username: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(users.c.username == username)
        return int(connection.execute(query).scalar_one())


def test_leaving_without_commit_rolls_back(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    with uow_factory() as uow:
        uow.users.create(username="ann", display_name="Ann")
    assert _count_users(migrated_engine, "ann") == 0


def test_exception_rolls_back_and_propagates(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    with pytest.raises(RuntimeError), uow_factory() as uow:
        uow.users.create(username="bob", display_name="Bob")
        raise RuntimeError("boom")
    assert _count_users(migrated_engine, "bob") == 0


def test_commit_persists_and_later_work_is_separate(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    with uow_factory() as uow:
        uow.users.create(username="cat", display_name="Cat")
        uow.commit()
        uow.users.create(username="dan", display_name="Dan")
    assert _count_users(migrated_engine, "cat") == 1
    assert _count_users(migrated_engine, "dan") == 0


def test_explicit_rollback_discards_and_continues(uow_factory: Callable[[], UnitOfWork]) -> None:
    with uow_factory() as uow:
        uow.users.create(username="eve", display_name="Eve")
        uow.rollback()
        assert uow.users.find_by_username(username="eve") is None
        uow.users.create(username="eve", display_name="Eve")
        uow.commit()
        assert uow.users.get_by_username(username="eve").display_name == "Eve"


def test_unique_violation_names_the_constraint(uow_factory: Callable[[], UnitOfWork]) -> None:
    with uow_factory() as uow:
        uow.users.create(username="fay", display_name="Fay")
        with pytest.raises(ConflictError) as caught:
            uow.users.create(username="fay", display_name="Fay again")
    assert caught.value.code == "storage.unique-violation"
    assert isinstance(caught.value, ConstraintConflict)
    assert caught.value.constraint == "uq_users_username"


def test_raw_integrity_error_escaping_the_block_is_translated(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    with pytest.raises(ConflictError) as caught, uow_factory() as uow:
        uow.conn.execute(sa.text("INSERT INTO user_roles (user_id, role_id) VALUES (-1, -1)"))
    assert caught.value.code == "storage.foreign-key-violation"


def test_check_violation(uow_factory: Callable[[], UnitOfWork]) -> None:
    with pytest.raises(ConflictError) as caught, uow_factory() as uow:
        uow.users.create(username="gil", display_name="Gil", status="on-holiday")
    assert caught.value.code == "storage.check-violation"
    assert isinstance(caught.value, ConstraintConflict)
    assert caught.value.constraint == "ck_users_status"


def test_unit_on_a_connection_commits_to_a_savepoint(conn: sa.Connection) -> None:
    with UnitOfWork(conn) as uow:
        uow.users.create(username="hal", display_name="Hal")
        uow.commit()
        uow.users.create(username="ida", display_name="Ida")
    names = set(conn.execute(sa.select(users.c.username)).scalars())
    assert "hal" in names
    assert "ida" not in names


def test_failed_unit_on_a_connection_leaves_the_outer_transaction_usable(
    conn: sa.Connection,
) -> None:
    with pytest.raises(ConflictError), UnitOfWork(conn) as uow:
        uow.users.create(username="jo", display_name="Jo")
        uow.users.create(username="jo", display_name="Jo")
    assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == 0

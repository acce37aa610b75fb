"""Fixtures for outbox tests: users with and without an e-mail address."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.storage.uow import UnitOfWork


@pytest.fixture
def recipients(uow_factory: Callable[[], UnitOfWork]) -> dict[str, int]:
    """Committed users: ann and bob have addresses, cy has none. Returns their ids by name."""
    from engine.identity.accounts import create_user
    from engine.identity.passwords import PasswordPolicy

    ids = {}
    with uow_factory() as uow:
        for name, address in (
            ("ann", "ann@example.test"),
            ("bob", "bob@example.test"),
            ("cy", None),
        ):
            user = create_user(
                uow=uow,
                actor=None,
                username=name,
                display_name=name.title(),
                email=address,
                policy=PasswordPolicy(),
            )
            ids[name] = user.id
        uow.commit()
    return ids

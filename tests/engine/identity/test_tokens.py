"""API tokens: shown once, stored hashed, revoked and expired tokens refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.errors import PermissionDenied
from engine.identity import accounts
from engine.identity.actor import Actor
from engine.identity.errors import NotAuthenticated
from engine.identity.passwords import PasswordPolicy
from engine.identity.service import authenticate_token, load_actor
from engine.identity.tokens import create_token, list_tokens, resolve_token, revoke_token
from engine.storage.uow import UnitOfWork

POLICY = PasswordPolicy(time_cost=1, memory_kib=8 * 1024)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow(conn: sa.Connection, clock: Clock) -> Iterator[UnitOfWork]:
    with UnitOfWork(conn, clock=clock) as unit:
        yield unit


def _actor(uow: UnitOfWork, name: str) -> Actor:
    user = accounts.create_user(
        uow=uow, actor=None, username=name, display_name=name, password=None, policy=POLICY
    )
    return load_actor(uow=uow, user_id=user.id)


def test_token_is_shown_once_and_stored_as_a_digest(uow: UnitOfWork, clock: Clock) -> None:
    ann = _actor(uow, "ann")
    new = create_token(uow=uow, actor=ann, name="erp")
    assert new.token.startswith("tgm_") and len(new.token) > 40
    assert new.record.prefix == new.token[:12]
    stored = uow.conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert new.token not in stored and len(stored) == 64
    clock.now = NOW + timedelta(minutes=5)
    assert authenticate_token(uow=uow, token=new.token).actor.username == "ann"
    (listed,) = list_tokens(uow=uow, actor=ann)
    assert listed.last_used_at == clock.now and not hasattr(listed, "token_hash")


@pytest.mark.parametrize("token", ["tgm_unknown", "not-a-token", "", "tgm_' OR 1=1 --"])
def test_unknown_tokens(uow: UnitOfWork, token: str) -> None:
    with pytest.raises(NotAuthenticated) as caught:
        resolve_token(uow=uow, token=token)
    assert caught.value.code == "identity.token-invalid"


def test_revoked_and_expired_tokens(uow: UnitOfWork, clock: Clock) -> None:
    ann = _actor(uow, "ann")
    revoked = create_token(uow=uow, actor=ann, name="old")
    assert revoke_token(uow=uow, actor=ann, token_id=revoked.record.id)
    assert not revoke_token(uow=uow, actor=ann, token_id=revoked.record.id)
    expiring = create_token(uow=uow, actor=ann, name="tmp", expires_at=NOW + timedelta(days=1))
    resolve_token(uow=uow, token=expiring.token)
    clock.now = NOW + timedelta(days=1)
    for secret, code in ((revoked.token, "revoked"), (expiring.token, "expired")):
        with pytest.raises(NotAuthenticated) as caught:
            resolve_token(uow=uow, token=secret)
        assert caught.value.code == f"identity.token-{code}"
    actions = [e.action for e in uow.audit.query(target_kind="token")]
    assert actions.count("token.create") == 2 and actions.count("token.revoke") == 1


def test_tokens_of_disabled_users_stop_working(uow: UnitOfWork) -> None:
    ann = _actor(uow, "ann")
    new = create_token(uow=uow, actor=ann, name="erp")
    accounts.set_user_active(uow=uow, actor=None, user_id=ann.user_id, active=False)
    with pytest.raises(NotAuthenticated) as caught:
        authenticate_token(uow=uow, token=new.token)
    assert caught.value.code == "identity.user-disabled"


def test_only_the_owner_or_an_admin_revokes_and_lists(uow: UnitOfWork) -> None:
    ann, bob = _actor(uow, "ann"), _actor(uow, "bob")
    new = create_token(uow=uow, actor=ann, name="erp")
    with pytest.raises(PermissionDenied):
        revoke_token(uow=uow, actor=bob, token_id=new.record.id)
    assert list_tokens(uow=uow, actor=bob, every_user=True) == []
    admin = Actor(user_id=bob.user_id, username="bob", is_admin=True)
    assert len(list_tokens(uow=uow, actor=admin, every_user=True)) == 1
    assert revoke_token(uow=uow, actor=admin, token_id=new.record.id)

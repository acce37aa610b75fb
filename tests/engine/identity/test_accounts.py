"""Organisation services: users, the department tree, grants and the resolved `Actor`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError, PermissionDenied, SubmissionError
from engine.identity import accounts
from engine.identity.actor import Actor
from engine.identity.passwords import PasswordPolicy
from engine.identity.service import load_actor, role_specs
from engine.storage.uow import UnitOfWork

POLICY = PasswordPolicy(time_cost=1, memory_kib=8 * 1024)
ROLE_BODY = {
    "key": "agent",
    "label": "Agent",
    "permissions": [{"form": "ticket", "actions": ["read"], "scope": "department"}],
}


@pytest.fixture
def uow(conn: sa.Connection) -> Iterator[UnitOfWork]:
    with UnitOfWork(conn) as unit:
        yield unit


def _user(uow: UnitOfWork, name: str) -> int:
    return accounts.create_user(
        uow=uow, actor=None, username=name, display_name=name, password=None, policy=POLICY
    ).id


def _tree(uow: UnitOfWork) -> dict[str, int]:
    """service → north → north_a; sales (separate)."""
    ids: dict[str, int] = {}
    for key, parent in (
        ("service", None),
        ("north", "service"),
        ("north_a", "north"),
        ("sales", None),
    ):
        ids[key] = accounts.create_department(
            uow=uow, actor=None, key=key, name=key.title(), parent_id=ids.get(parent or "")
        ).id
    return ids


def _install_role(uow: UnitOfWork) -> None:
    uow.definitions.install_app(key="desk", name="Desk", version="1.0.0", manifest={})
    uow.definitions.publish(
        app="desk", kind="roles", key="agent", body=ROLE_BODY, digest="d1", actor=None
    )


def test_actor_departments_ancestors_and_subtree(uow: UnitOfWork) -> None:
    ids = _tree(uow)
    user = _user(uow, "ann")
    accounts.set_membership(
        uow=uow, actor=None, department_id=ids["north"], user_id=user, member=True
    )
    actor = load_actor(uow=uow, user_id=user)
    assert actor.department_ids == {ids["north"]}
    assert actor.ancestor_department_ids == {ids["north"], ids["service"]}
    assert actor.subtree_department_ids == {ids["north"], ids["north_a"]}
    assert not actor.is_admin


def test_move_refuses_cycles_and_allows_valid_moves(uow: UnitOfWork) -> None:
    ids = _tree(uow)
    for new_parent in (ids["north_a"], ids["service"]):
        with pytest.raises(SubmissionError) as caught:
            accounts.update_department(
                uow=uow, actor=None, department_id=ids["service"], changes={"parent_id": new_parent}
            )
        assert caught.value.errors[0].code == "identity.department-cycle"
    moved = accounts.update_department(
        uow=uow, actor=None, department_id=ids["north_a"], changes={"parent_id": ids["sales"]}
    )
    assert moved.parent_id == ids["sales"]
    renamed = accounts.update_department(
        uow=uow, actor=None, department_id=ids["north"], changes={"name": {"en": "N", "zh": "北"}}
    )
    assert renamed.name == {"en": "N", "zh": "北"}
    top = accounts.update_department(
        uow=uow, actor=None, department_id=ids["north"], changes={"parent_id": None}
    )
    assert top.parent_id is None


def test_department_grants_reach_sub_departments(uow: UnitOfWork) -> None:
    _install_role(uow)
    ids = _tree(uow)
    user = _user(uow, "ann")
    accounts.set_membership(
        uow=uow, actor=None, department_id=ids["north_a"], user_id=user, member=True
    )
    accounts.grant_role(uow=uow, actor=None, app="desk", role="agent", department_id=ids["service"])
    actor = load_actor(uow=uow, user_id=user)
    assert actor.role_keys("desk") == {"agent"}
    assert [spec.key for spec in role_specs(uow=uow, actor=actor, app="desk")] == ["agent"]
    outsider = load_actor(uow=uow, user_id=_user(uow, "bob"))
    assert outsider.role_keys("desk") == frozenset()


def test_user_grants_revokes_and_audit(uow: UnitOfWork) -> None:
    _install_role(uow)
    user = _user(uow, "ann")
    accounts.grant_role(uow=uow, actor=None, app="desk", role="agent", user_id=user)
    with pytest.raises(ConflictError):
        accounts.grant_role(uow=uow, actor=None, app="desk", role="agent", user_id=user)


def test_revoke_and_admin(uow: UnitOfWork) -> None:
    _install_role(uow)
    user = _user(uow, "ann")
    accounts.grant_role(uow=uow, actor=None, app="desk", role="agent", user_id=user)
    accounts.grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user)
    assert load_actor(uow=uow, user_id=user).is_admin
    assert accounts.revoke_role(uow=uow, actor=None, app="desk", role="agent", user_id=user)
    assert not accounts.revoke_role(uow=uow, actor=None, app="desk", role="agent", user_id=user)
    assert load_actor(uow=uow, user_id=user).role_keys("desk") == frozenset()
    actions = [e.action for e in uow.audit.query(target_kind="role")]
    assert actions == ["role.revoke", "role.grant", "role.grant"]


def test_unknown_roles_and_grantees_are_refused(uow: UnitOfWork) -> None:
    user = _user(uow, "ann")
    with pytest.raises(NotFoundError) as caught:
        accounts.grant_role(uow=uow, actor=None, app="desk", role="ghost", user_id=user)
    assert caught.value.code == "identity.no-role"
    with pytest.raises(NotFoundError):
        accounts.grant_role(uow=uow, actor=None, app=None, role="superuser", user_id=user)
    with pytest.raises(SubmissionError):
        accounts.grant_role(uow=uow, actor=None, app=None, role="admin")


def test_admins_cannot_lock_themselves_out(uow: UnitOfWork) -> None:
    user = _user(uow, "ann")
    accounts.grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user)
    me = load_actor(uow=uow, user_id=user)
    with pytest.raises(PermissionDenied):
        accounts.set_user_active(uow=uow, actor=me, user_id=user, active=False)
    with pytest.raises(PermissionDenied):
        accounts.revoke_role(uow=uow, actor=me, app=None, role="admin", user_id=user)
    with pytest.raises(PermissionDenied):
        accounts.require_admin(Actor(user_id=99, username="x"))


def test_weak_password_is_refused(uow: UnitOfWork) -> None:
    with pytest.raises(SubmissionError) as caught:
        accounts.create_user(
            uow=uow, actor=None, username="ann", display_name="Ann", password="short", policy=POLICY
        )
    assert caught.value.errors[0].code == "identity.weak-password"


def test_user_changes_are_audited(uow: UnitOfWork) -> None:
    user = _user(uow, "ann")
    accounts.update_user(uow=uow, actor=None, user_id=user, changes={"email": "a@example.com"})
    accounts.set_user_active(uow=uow, actor=None, user_id=user, active=False)
    assert uow.users.get(user_id=user).status == "disabled"
    actions = [e.action for e in uow.audit.query(target_kind="user", target_key="ann")]
    assert actions == ["user.disable", "user.update", "user.create"]

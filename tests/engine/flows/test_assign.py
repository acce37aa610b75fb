"""Assignee rules on a real database: every rule type, `candidates`, disabled users, and
round-robin fairness under concurrency (threads on PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import SubmissionError, TransitionError
from engine.flows.assignees import AssignContext, Assignment, resolve_rule
from engine.flows.assignees_attrs import save_attributes
from engine.flows.spec import AssigneeRule
from engine.storage.uow import UnitOfWork

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Org:
    """Users by name, departments by key: sales (head ann) > east (head bob) > east_team."""

    users: dict[str, int]
    departments: dict[str, int]
    unit: Callable[[], UnitOfWork]

    def resolve(self, rule: dict[str, Any], **context: Any) -> tuple[int, ...]:
        return self.assign(rule, **context).user_ids

    def assign(self, rule: dict[str, Any], **context: Any) -> Assignment:
        with self.unit() as uow:
            ctx = AssignContext(
                app="app1",
                scope=context.pop("scope", "app1/flow/node"),
                record=context.pop("record", {}),
                initiator_id=context.pop("initiator_id", None),
                now=T0,
            )
            found = resolve_rule(uow.conn, AssigneeRule.model_validate(rule), ctx)
            uow.commit()
        return found

    def names(self, ids: tuple[int, ...]) -> list[str]:
        by_id = {v: k for k, v in self.users.items()}
        return [by_id[i] for i in ids]


@pytest.fixture
def org(uow_factory: Callable[[], UnitOfWork]) -> Iterator[Org]:
    users: dict[str, int] = {}
    with uow_factory() as uow:
        uow.definitions.install_app(key="app1", name="App", version="1.0.0", manifest={})
        for name in ("ann", "bob", "cid", "dan", "eve", "off"):
            users[name] = uow.users.create(username=name, display_name=name.title()).id
        uow.users.update(user_id=users["off"], status="disabled")
        sales = uow.departments.create(key="sales", name="Sales", head_user_id=users["ann"])
        east = uow.departments.create(
            key="east", name="East", parent_id=sales.id, head_user_id=users["bob"]
        )
        team = uow.departments.create(key="east_team", name="East team", parent_id=east.id)
        uow.departments.add_member(department_id=sales.id, user_id=users["ann"])
        uow.departments.add_member(department_id=east.id, user_id=users["bob"])
        uow.departments.add_member(department_id=team.id, user_id=users["cid"], is_primary=True)
        uow.departments.add_member(department_id=team.id, user_id=users["off"])
        support = uow.roles.create(key="support", label="Support", app="app1")
        uow.roles.assign(role_id=support.id, user_id=users["dan"])
        uow.roles.assign(role_id=support.id, user_id=users["off"])
        uow.roles.assign_department(role_id=support.id, department_id=east.id)
        uow.roles.create(key="support", label="Global support", app=None)
        departments = {"sales": sales.id, "east": east.id, "east_team": team.id}
        uow.commit()
    yield Org(users, departments, uow_factory)


def test_user_rule_takes_usernames_and_drops_disabled_users(org: Org) -> None:
    assert org.names(org.resolve({"type": "user", "value": "eve, ann, off, nobody"})) == [
        "eve",
        "ann",
    ]


def test_role_rule_reaches_direct_and_department_grants_below(org: Org) -> None:
    # dan directly; bob (east) and cid (east_team, below east) through the department grant
    assert sorted(org.names(org.resolve({"type": "role", "value": "support"}))) == [
        "bob",
        "cid",
        "dan",
    ]


def test_department_rule_is_direct_members(org: Org) -> None:
    assert org.names(org.resolve({"type": "department", "value": "east_team"})) == ["cid"]


def test_department_head_of_the_initiator_and_levels_up(org: Org) -> None:
    cid = org.users["cid"]
    rule = {"type": "department_head"}
    assert org.resolve(rule, initiator_id=cid) == ()  # east_team has no head
    assert org.names(org.resolve({**rule, "levels_up": 1}, initiator_id=cid)) == ["bob"]
    assert org.names(org.resolve({**rule, "levels_up": 2}, initiator_id=cid)) == ["ann"]
    assert org.resolve({**rule, "levels_up": 3}, initiator_id=cid) == ()
    assert org.names(org.resolve({**rule, "value": "east"})) == ["bob"]


def test_initiator_field_and_expression_rules(org: Org) -> None:
    assert org.names(org.resolve({"type": "initiator"}, initiator_id=org.users["eve"])) == ["eve"]
    record = {"handler": org.users["bob"], "helpers": [org.users["cid"], org.users["off"]]}
    assert org.names(org.resolve({"type": "field", "value": "handler"}, record=record)) == ["bob"]
    assert org.names(org.resolve({"type": "field", "value": "helpers"}, record=record)) == ["cid"]
    rule = {"type": "expr", "value": 'IF(priority > 3, "ann", "eve")'}
    assert org.names(org.resolve(rule, record={"priority": 5})) == ["ann"]
    assert org.names(org.resolve(rule, record={"priority": 1})) == ["eve"]


def test_candidates_expression_narrows_with_candidate_attributes(org: Org) -> None:
    with org.unit() as uow:
        save_attributes(uow.conn, user_id=org.users["bob"], attributes={"level": 3}, now=T0)
        save_attributes(uow.conn, user_id=org.users["dan"], attributes={"level": 1}, now=T0)
        uow.commit()
    rule = {"type": "role", "value": "support", "candidates": "$candidate.level >= minimum"}
    assert org.names(org.resolve(rule, record={"minimum": 2})) == ["bob"]


def test_bad_rules_are_clear_errors(org: Org) -> None:
    with pytest.raises(TransitionError) as caught:
        org.resolve({"type": "expr", "value": "IF("})
    assert caught.value.code == "task.bad-assignee-rule"
    with pytest.raises(TransitionError):
        org.resolve({"type": "round_robin"})


def test_round_robin_cycles_through_the_group_in_id_order(org: Org) -> None:
    rule = {"type": "round_robin", "value": "role:support"}
    picked = [org.names(org.resolve(rule))[0] for _ in range(6)]
    assert picked == ["bob", "cid", "dan", "bob", "cid", "dan"]
    other = org.resolve(rule, scope="app1/flow/other")  # a counter per node
    assert org.names(other) == ["bob"]


def test_least_loaded_picks_the_user_with_fewest_open_tasks(org: Org) -> None:
    from engine.flows.spec import UserTaskNode
    from engine.flows.tasks_store import insert_group, insert_task

    node = UserTaskNode.model_validate(
        {"key": "n", "type": "user_task", "assignees": [{"type": "initiator"}]}
    )
    with org.unit() as uow:
        group = insert_group(
            uow.conn,
            instance_id=1,
            token_id=1,
            app="app1",
            flow="f",
            flow_version=1,
            node_key="n",
            node=node,
            created_at=T0,
        )
        for user in ("bob", "bob", "cid"):
            insert_task(
                uow.conn,
                group_id=group,
                instance_id=1,
                kind="handle",
                assignee_id=org.users[user],
                status="open",
                created_at=T0,
            )
        uow.commit()
    rule = {"type": "least_loaded", "value": "department:east"}  # bob, cid (off is disabled)
    assert org.names(org.resolve(rule)) == ["cid"]


def test_skill_match_filters_on_attributes_and_ranks_by_level(org: Org) -> None:
    attributes: dict[str, dict[str, Any]] = {
        "bob": {"skills": {"printer": 2}, "regions": ["north"]},
        "cid": {"skills": {"printer": 5, "laser": 1}, "regions": ["north", "south"]},
        "dan": {"skills": ["printer"], "regions": ["south"]},
    }
    with org.unit() as uow:
        for name, attrs in attributes.items():
            save_attributes(uow.conn, user_id=org.users[name], attributes=attrs, now=T0)
        uow.commit()
    rule = {"type": "skill_match", "value": "role:support skills=skill regions=region"}
    assert org.names(org.resolve(rule, record={"skill": "printer", "region": "north"})) == ["cid"]
    assert org.names(org.resolve(rule, record={"skill": "printer", "region": "south"})) == ["cid"]
    assert org.names(org.resolve(rule, record={"skill": "laser", "region": "north"})) == ["cid"]
    assert org.resolve(rule, record={"skill": "fax", "region": "north"}) == ()
    anyone = {"type": "skill_match", "value": "regions=region"}
    assert org.names(org.resolve(anyone, record={"region": "south"})) == ["cid"]


def test_pool_rule_yields_every_member_as_candidates(org: Org) -> None:
    found = org.assign({"type": "pool", "value": "support"})
    assert found.pool is True
    assert sorted(org.names(found.user_ids)) == ["bob", "cid", "dan"]


def test_attributes_are_validated_with_paths(org: Org) -> None:
    with org.unit() as uow, pytest.raises(SubmissionError) as caught:
        save_attributes(
            uow.conn,
            user_id=org.users["bob"],
            attributes={"skills": {"printer": "high"}, "regions": "north"},
            now=T0,
        )
    assert {(e.loc, e.code) for e in caught.value.errors} == {
        ("skills", "task.bad-attributes"),
        ("regions", "task.bad-attributes"),
    }


def test_round_robin_is_fair_under_concurrent_assignments(
    org: Org, backend: str, migrated_engine: sa.Engine
) -> None:
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    rule = AssigneeRule.model_validate({"type": "round_robin", "value": "role:support"})
    picked: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)
    lock = threading.Lock()

    def assign_many() -> None:
        try:
            start.wait()
            for _ in range(15):
                with UnitOfWork(migrated_engine) as uow:
                    ctx = AssignContext(
                        app="app1", scope="app1/race/n", record={}, initiator_id=None, now=T0
                    )
                    found = resolve_rule(uow.conn, rule, ctx)
                    uow.commit()
                with lock:
                    picked.extend(found.user_ids)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=assign_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(picked) == 120
    assert sorted(Counter(org.names(tuple(picked))).values()) == [40, 40, 40]

"""User tasks with the real flow runtime: modes any/all/sequential/ratio, CC, empty assignees,
field permissions, and completing a task twice or concurrently."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from engine.errors import ConflictError, PermissionDenied, SubmissionError, TransitionError
from engine.flows.inbox import count_boxes, list_tasks, task_detail
from tests.engine.flows.conftest import T0
from tests.engine.flows.test_tasks_kit import TaskKit, flow, task_kit

__all__ = ["task_kit"]  # the fixture, imported for pytest

Kit = Callable[..., TaskKit]
ANN_BOB = "[{type: user, value: 'ann,bob'}]"
THREE = "[{type: user, value: 'ann,bob,cid'}]"


def test_any_mode_first_approval_decides_and_cancels_the_rest(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN_BOB, mode="any")})
    kit.create(subject="printer")
    task = kit.open_task("check", "bob")
    result = kit.service.approve(task_id=task.id, actor=kit.actor("bob"))
    assert result.node_outcome == "approved"
    assert kit.who(kit.tasks(node="check")) == [("ann", "cancelled"), ("bob", "done")]
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_any_mode_first_rejection_decides(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN_BOB, mode="any")})
    kit.create(subject="printer")
    kit.service.reject(task_id=kit.open_task("check", "ann").id, actor=kit.actor("ann"))
    assert kit.path()[-1] == "rejected"
    assert kit.instance_status() == ["completed"]


def test_all_mode_waits_for_everyone_and_one_rejection_rejects(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=THREE, mode="all")})
    kit.create(subject="printer")
    first = kit.service.approve(task_id=kit.open_task("check", "ann").id, actor=kit.actor("ann"))
    assert first.node_outcome is None
    assert kit.tasks(node="handle") == []
    second = kit.service.reject(task_id=kit.open_task("check", "cid").id, actor=kit.actor("cid"))
    assert second.node_outcome == "rejected"
    assert kit.who(kit.tasks(node="check")) == [
        ("ann", "done"),
        ("bob", "cancelled"),
        ("cid", "done"),
    ]


def test_all_mode_approved_when_all_approve(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN_BOB, mode="all")})
    kit.create(subject="printer")
    for name in ("ann", "bob"):
        kit.service.approve(task_id=kit.open_task("check", name).id, actor=kit.actor(name))
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_sequential_mode_opens_one_task_after_the_other(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=THREE, mode="sequential")})
    kit.create(subject="printer")
    assert kit.who(kit.tasks(node="check")) == [
        ("ann", "open"),
        ("bob", "waiting"),
        ("cid", "waiting"),
    ]
    waiting = kit.tasks(node="check", assignee_id=kit.users["bob"])[0]
    with pytest.raises(TransitionError) as caught:
        kit.service.approve(task_id=waiting.id, actor=kit.actor("bob"))
    assert caught.value.code == "task.not-open"
    kit.service.approve(task_id=kit.open_task("check", "ann").id, actor=kit.actor("ann"))
    assert kit.who(kit.tasks(node="check"))[1:] == [("bob", "open"), ("cid", "waiting")]
    kit.service.approve(task_id=kit.open_task("check", "bob").id, actor=kit.actor("bob"))
    kit.service.approve(task_id=kit.open_task("check", "cid").id, actor=kit.actor("cid"))
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


@pytest.mark.parametrize(
    ("ratio", "decisions", "outcome"),
    [
        (0.5, [("ann", True), ("bob", True)], "approved"),  # 2 of 4 reach 50 %
        (0.5, [("ann", False), ("bob", False), ("cid", False)], "rejected"),
        (0.75, [("ann", True), ("bob", False)], None),  # 3 of 4 still possible
        (0.75, [("ann", True), ("bob", False), ("cid", False)], "rejected"),
    ],
)
def test_ratio_mode(
    task_kit: Kit, ratio: float, decisions: list[tuple[str, bool]], outcome: str | None
) -> None:
    assignees = "[{type: user, value: 'ann,bob,cid,dan'}]"
    kit = task_kit({"review": flow(assignees=assignees, mode="ratio", extra=f"    ratio: {ratio}")})
    kit.create(subject="printer")
    last = None
    for name, approve in decisions:
        task_id = kit.open_task("check", name).id
        act = kit.service.approve if approve else kit.service.reject
        last = act(task_id=task_id, actor=kit.actor(name))
    assert last is not None and last.node_outcome == outcome


def test_fill_tasks_complete_with_outcome_done(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees="[{type: initiator}]", kind="fill")})
    kit.create(subject="printer")
    result = kit.service.complete(task_id=kit.open_task("check", "fay").id, actor=kit.actor("fay"))
    assert (result.outcome, result.node_outcome) == ("done", "done")
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_cc_node_moves_on_at_once_and_shows_in_the_cc_box(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN_BOB, kind="cc", guarded=False)})
    kit.create(subject="printer")
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]
    [cc_ann, _] = kit.tasks(node="check")
    with kit.unit() as uow:
        assert count_boxes(uow.conn, user_id=kit.users["ann"])["cc_unread"] == 1
        assert [t["id"] for t in list_tasks(uow.conn, user_id=kit.users["ann"], box="cc")] == [
            cc_ann.id
        ]
    with pytest.raises(TransitionError):
        kit.service.approve(task_id=cc_ann.id, actor=kit.actor("ann"))
    with kit.unit() as uow:
        records = kit.service._records  # noqa: SLF001 - the kit's own service
        task_detail(uow, records=records, task_id=cc_ann.id, actor=kit.actor("ann"), now=T0)
        uow.commit()
    assert kit.task(cc_ann.id).read_at is not None


@pytest.mark.parametrize(
    ("if_empty", "expected"),
    [("skip", "handle"), ("admin", "check"), ("{type: user, value: dan}", "check")],
)
def test_if_empty(task_kit: Kit, if_empty: str, expected: str) -> None:
    kit = task_kit(
        {
            "review": flow(
                assignees="[{type: field, value: handler}]",
                extra=f"    if_empty: {if_empty}",
                guarded=False,
            )
        }
    )
    if if_empty == "admin":
        from engine.identity.accounts import grant_role

        with kit.unit() as uow:
            grant_role(uow=uow, actor=None, app=None, role="admin", user_id=kit.users["cid"])
            uow.commit()
    kit.create(subject="printer")
    [task] = kit.tasks(status="open")
    assert kit.tasks(node=expected) == [task]
    if if_empty == "admin":
        assert task.assignee_id == kit.users["cid"]


def test_if_empty_fail_puts_the_instance_in_error(task_kit: Kit) -> None:
    kit = task_kit(
        {"review": flow(assignees="[{type: field, value: handler}]", extra="    if_empty: fail")}
    )
    kit.create(subject="printer")
    assert kit.instance_status() == ["error"]
    assert kit.tasks() == []


def test_completing_twice_conflicts_and_others_are_refused(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN_BOB, mode="all")})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    with pytest.raises(PermissionDenied) as refused:
        kit.service.approve(task_id=task.id, actor=kit.actor("bob"))
    assert refused.value.code == "task.not-yours"
    kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    with pytest.raises(ConflictError) as again:
        kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    assert again.value.code == "task.already-done"
    assert kit.actions(task.id) == ["opened", "approved"]


def test_concurrent_completions_one_wins(task_kit: Kit, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    kit = task_kit({"review": flow(assignees="[{type: user, value: ann}]")})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    actor = kit.actor("ann")
    barrier = threading.Barrier(6)
    results: list[str] = []
    lock = threading.Lock()

    def complete() -> None:
        barrier.wait()
        try:
            kit.service.approve(task_id=task.id, actor=actor)
            outcome = "ok"
        except ConflictError as err:
            outcome = err.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=complete) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] + ["task.already-done"] * 5
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]  # exactly one next task


FIELDS = "    field_permissions: {note: required, priority: edit, subject: hidden, status: read}"


def test_field_permissions_mask_the_record_and_limit_the_values(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees="[{type: user, value: ann}]", extra=FIELDS)})
    from engine.identity.accounts import grant_role

    with kit.unit() as uow:  # ann is an admin: her form access is everything, the node narrows
        grant_role(uow=uow, actor=None, app=None, role="admin", user_id=kit.users["ann"])
        uow.commit()
    record = kit.create(subject="secret", priority=1)
    task = kit.open_task("check", "ann")
    actor = kit.actor("ann")
    with kit.unit() as uow:
        detail = task_detail(
            uow,
            records=kit.service._records,
            task_id=task.id,
            actor=actor,  # noqa: SLF001
            now=T0,
        )
    assert "subject" not in detail["record"]
    assert detail["fields"]["note"] == "required"
    assert detail["fields"]["priority"] == "edit"
    assert detail["fields"]["status"] == "read"
    assert detail["fields"]["due"] == "read"  # not opened by the node: read-only in the task
    with pytest.raises(SubmissionError) as refused:
        kit.service.approve(task_id=task.id, actor=actor, values={"subject": "x", "status": "open"})
    assert {(e.loc, e.code) for e in refused.value.errors} == {
        ("subject", "task.field-not-editable"),
        ("status", "task.field-not-editable"),
    }
    with pytest.raises(SubmissionError) as missing:
        kit.service.approve(task_id=task.id, actor=actor, values={"priority": 2})
    assert [(e.loc, e.code) for e in missing.value.errors] == [("note", "task.field-required")]
    assert kit.record(record.id).values["priority"] == 1  # nothing half-written
    kit.service.approve(task_id=task.id, actor=actor, values={"priority": 3, "note": "checked"})
    after = kit.record(record.id).values
    assert (after["priority"], after["note"]) == (3, "checked")
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_node_permissions_never_widen_form_access(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees="[{type: user, value: ann}]", extra=FIELDS)})
    kit.create(subject="secret")
    task = kit.open_task("check", "ann")
    actor = kit.actor("ann")  # no role in app fl: every field hidden to her
    with kit.unit() as uow:
        detail = task_detail(
            uow,
            records=kit.service._records,
            task_id=task.id,
            actor=actor,  # noqa: SLF001
            now=T0,
        )
    assert detail["fields"] == {}
    assert "note" not in detail["record"]
    with pytest.raises(SubmissionError) as refused:
        kit.service.approve(task_id=task.id, actor=actor, values={"note": "x"})
    assert [e.code for e in refused.value.errors] == ["task.field-not-editable"]

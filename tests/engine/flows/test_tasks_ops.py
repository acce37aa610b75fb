"""Task operations with the real runtime: return, transfer, delegate, add signer, claim,
withdraw, comment with attachments, batch approve; each writes the action log."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.errors import ConflictError, PermissionDenied, SubmissionError, TransitionError
from tests.engine.flows.test_tasks_kit import TaskKit, flow, task_kit

__all__ = ["task_kit"]  # the fixture, imported for pytest

Kit = Callable[..., TaskKit]
ANN = "[{type: user, value: ann}]"


def _at_handle(kit: TaskKit) -> int:
    kit.create(subject="printer")
    kit.service.approve(task_id=kit.open_task("check", "ann").id, actor=kit.actor("ann"))
    return kit.open_task("handle", "eve").id


@pytest.mark.parametrize("target", ["previous", "check"])
def test_return_to_an_earlier_node_reopens_it(task_kit: Kit, target: str) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    handle = _at_handle(kit)
    result = kit.service.return_to(task_id=handle, actor=kit.actor("eve"), target=target)
    assert (result.node_outcome, result.extra["goto"]) == ("returned", "check")
    assert kit.task(handle).outcome == "returned"
    assert kit.who(kit.tasks(node="check")) == [("ann", "done"), ("ann", "open")]
    assert kit.path()[-2:] == ["handle", "check"]


def test_return_to_start_and_bad_targets(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    handle = _at_handle(kit)
    with pytest.raises(SubmissionError) as caught:
        kit.service.return_to(task_id=handle, actor=kit.actor("eve"), target="done")
    assert [(e.loc, e.code) for e in caught.value.errors] == [("target", "task.bad-target")]
    result = kit.service.return_to(task_id=handle, actor=kit.actor("eve"), target="start")
    assert result.extra["goto"] == "start"
    assert kit.who(kit.tasks(node="check"))[-1] == ("ann", "open")


def test_transfer_hands_the_task_over(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    kit.service.transfer(task_id=task.id, actor=kit.actor("ann"), to_user=kit.users["bob"])
    with pytest.raises(PermissionDenied):
        kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    kit.service.approve(task_id=task.id, actor=kit.actor("bob"))
    assert kit.actions(task.id) == ["opened", "transferred", "approved"]
    assert kit.task(task.id).completed_by == kit.users["bob"]


def test_transfer_to_a_disabled_user_is_refused(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    with kit.unit() as uow:
        uow.users.update(user_id=kit.users["bob"], status="disabled")
        uow.commit()
    task = kit.open_task("check", "ann")
    with pytest.raises(SubmissionError) as caught:
        kit.service.transfer(task_id=task.id, actor=kit.actor("ann"), to_user=kit.users["bob"])
    assert caught.value.errors[0].code == "task.bad-user"


def test_delegate_comes_back_to_the_owner_who_decides(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    kit.service.delegate(task_id=task.id, actor=kit.actor("ann"), to_user=kit.users["cid"])
    assert (kit.task(task.id).assignee_id, kit.task(task.id).owner_id) == (
        kit.users["cid"],
        kit.users["ann"],
    )
    resolved = kit.service.approve(task_id=task.id, actor=kit.actor("cid"))
    assert (resolved.status, resolved.node_outcome) == ("open", None)
    assert kit.task(task.id).assignee_id == kit.users["ann"]
    kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    assert kit.actions(task.id) == ["opened", "delegated", "delegation-resolved", "approved"]
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_signer_added_before_signs_first(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    added = kit.service.add_signer(
        task_id=task.id, actor=kit.actor("ann"), user_ids=[kit.users["bob"]], position="before"
    )
    assert kit.task(task.id).status == "waiting"
    [signer] = added.extra["task_ids"]
    kit.service.approve(task_id=signer, actor=kit.actor("bob"))
    assert kit.task(task.id).status == "open"
    assert kit.tasks(node="handle") == []
    kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    assert kit.who(kit.tasks(node="handle")) == [("eve", "open")]


def test_signer_added_after_must_sign_too_and_can_reject(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    added = kit.service.add_signer(
        task_id=task.id, actor=kit.actor("ann"), user_ids=[kit.users["bob"]], position="after"
    )
    [signer] = added.extra["task_ids"]
    assert kit.task(signer).status == "waiting"
    first = kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    assert first.node_outcome is None
    assert kit.task(signer).status == "open"
    last = kit.service.reject(task_id=signer, actor=kit.actor("bob"), comment="not yet")
    assert last.node_outcome == "rejected"
    assert kit.path()[-1] == "rejected"


POOL = "[{type: pool, value: 'department:desk'}]"


def _pool_kit(task_kit: Kit) -> TaskKit:
    kit = task_kit({"review": flow(assignees=POOL)})
    with kit.unit() as uow:
        desk = uow.departments.create(key="desk", name="Desk")
        for name in ("ann", "bob"):
            uow.departments.add_member(department_id=desk.id, user_id=kit.users[name])
        uow.commit()
    kit.create(subject="printer")
    return kit


def test_claim_pool_first_claim_wins(task_kit: Kit) -> None:
    kit = _pool_kit(task_kit)
    [task] = kit.tasks(node="check")
    assert (task.is_pool, task.assignee_id) == (True, None)
    with pytest.raises(PermissionDenied):
        kit.service.approve(task_id=task.id, actor=kit.actor("ann"))  # claim first
    with pytest.raises(PermissionDenied) as outsider:
        kit.service.claim(task_id=task.id, actor=kit.actor("cid"))
    assert outsider.value.code == "task.not-yours"
    kit.service.claim(task_id=task.id, actor=kit.actor("bob"))
    with pytest.raises(ConflictError) as late:
        kit.service.claim(task_id=task.id, actor=kit.actor("ann"))
    assert late.value.code == "task.already-claimed"
    kit.service.approve(task_id=task.id, actor=kit.actor("bob"))
    assert kit.actions(task.id) == ["opened", "claimed", "approved"]


def test_withdraw_by_the_initiator_before_anyone_acted(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees="[{type: user, value: 'ann,bob'}]", mode="all")})
    kit.create(subject="printer", by="fay")
    first = kit.open_task("check", "ann")
    with pytest.raises(PermissionDenied):
        kit.service.withdraw(task_id=first.id, actor=kit.actor("ann"))
    result = kit.service.withdraw(task_id=first.id, actor=kit.actor("fay"))
    assert result.extra["goto"] == "start"
    # back at the start, the flow runs again: a fresh pair of tasks
    assert kit.who(kit.tasks(node="check")) == [
        ("ann", "cancelled"),
        ("bob", "cancelled"),
        ("ann", "open"),
        ("bob", "open"),
    ]
    kit.service.approve(task_id=kit.open_task("check", "ann").id, actor=kit.actor("ann"))
    with pytest.raises(TransitionError) as late:
        kit.service.withdraw(task_id=kit.open_task("check", "bob").id, actor=kit.actor("fay"))
    assert late.value.code == "task.withdraw-too-late"


def test_operations_a_node_does_not_list_are_refused(task_kit: Kit) -> None:
    extra = "    operations: [comment]"
    kit = task_kit({"review": flow(assignees=ANN, extra=extra)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    with pytest.raises(TransitionError) as caught:
        kit.service.transfer(task_id=task.id, actor=kit.actor("ann"), to_user=kit.users["bob"])
    assert caught.value.code == "task.operation-not-allowed"
    with pytest.raises(TransitionError):
        kit.service.reject(task_id=task.id, actor=kit.actor("ann"))
    kit.service.comment(task_id=task.id, actor=kit.actor("ann"), body="looking")


def test_comment_with_attachments(task_kit: Kit) -> None:
    import sqlalchemy as sa

    from engine.storage.tables import stored_files
    from tests.engine.flows.conftest import T0

    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    with kit.unit() as uow:
        uow.conn.execute(
            sa.insert(stored_files).values(
                id="f" * 32,
                sha256="0" * 64,
                size=3,
                content_type="text/plain",
                name="note.txt",
                created_at=T0,
            )
        )
        uow.commit()
    with pytest.raises(SubmissionError) as caught:
        kit.service.comment(task_id=task.id, actor=kit.actor("ann"), body="x", file_ids=["nope"])
    assert [(e.loc, e.code) for e in caught.value.errors] == [("files/0", "task.unknown-file")]
    with pytest.raises(PermissionDenied):
        kit.service.comment(task_id=task.id, actor=kit.actor("cid"), body="hi")
    kit.service.comment(task_id=task.id, actor=kit.actor("ann"), body="see", file_ids=["f" * 32])
    # the initiator may comment too
    kit.service.comment(task_id=task.id, actor=kit.actor("fay"), body="thanks")
    assert kit.actions(task.id) == ["opened", "comment", "comment"]


def test_batch_approve_reports_each_task(task_kit: Kit) -> None:
    kit = task_kit({"review": flow(assignees=ANN)})
    kit.create(subject="one")
    kit.create(subject="two")
    first, second = kit.tasks(node="check")
    kit.service.approve(task_id=second.id, actor=kit.actor("ann"))
    report = kit.service.batch_approve(
        task_ids=[first.id, second.id, 999_999], actor=kit.actor("ann")
    )
    assert [(i.task_id, i.ok, i.code) for i in report] == [
        (first.id, True, None),
        (second.id, False, "task.already-done"),
        (999_999, False, "task.not-found"),
    ]


def test_terminating_the_instance_cancels_its_tasks_and_timeouts(task_kit: Kit) -> None:
    import sqlalchemy as sa

    from engine.flows.instances import FlowStore
    from engine.flows.service import FlowService
    from engine.identity.accounts import grant_role
    from engine.storage.tables_jobs import job_queue

    extra = "    timeout: {after: PT1H}"
    kit = task_kit({"review": flow(assignees="[{type: user, value: 'ann,bob'}]", extra=extra)})
    kit.create(subject="printer")
    with kit.unit() as uow:
        grant_role(uow=uow, actor=None, app=None, role="admin", user_id=kit.users["dan"])
        [instance] = FlowStore(uow.conn).instances(app=kit.app)
        uow.commit()
    FlowService(db=kit.engine, env=kit.env).terminate(
        instance_id=instance.id, actor=kit.actor("dan")
    )
    assert kit.who(kit.tasks(node="check")) == [("ann", "cancelled"), ("bob", "cancelled")]
    with kit.unit() as uow:
        jobs = uow.conn.execute(
            sa.select(job_queue.c.status).where(job_queue.c.kind == "task.timeout")
        )
        assert sorted(jobs.scalars()) == ["cancelled", "cancelled"]
    with pytest.raises(ConflictError):
        kit.service.approve(task_id=kit.tasks(node="check")[0].id, actor=kit.actor("ann"))


def test_concurrent_claims_one_wins(task_kit: Kit, backend: str) -> None:
    import threading

    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    kit = task_kit({"review": flow(assignees=POOL)})
    with kit.unit() as uow:
        desk = uow.departments.create(key="desk", name="Desk")
        for name in ("ann", "bob", "cid", "dan", "eve"):
            uow.departments.add_member(department_id=desk.id, user_id=kit.users[name])
        uow.commit()
    kit.create(subject="printer")
    [task] = kit.tasks(node="check")
    actors = [kit.actor(name) for name in ("ann", "bob", "cid", "dan", "eve")]
    barrier = threading.Barrier(len(actors))
    results: list[str] = []

    def claim(actor: object) -> None:
        barrier.wait()
        try:
            kit.service.claim(task_id=task.id, actor=actor)  # type: ignore[arg-type]
            results.append("ok")
        except ConflictError as err:
            results.append(err.code)

    threads = [threading.Thread(target=claim, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] + ["task.already-claimed"] * 4
    assert kit.actions(task.id) == ["opened", "claimed"]

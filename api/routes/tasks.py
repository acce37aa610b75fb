"""User tasks over HTTP: the inbox, task detail, one route per operation, batch approve; and
the user attributes (skills, regions) that assignment rules match against (admins only).

Errors follow the engine's codes: 409 `task.already-done` when a task was handled meanwhile,
403 `task.not-yours`, 422 with a path per refused field value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.routes.records import get_record_service
from api.schemas import problem_responses
from api.security import AdminActorDep, RequiredActorDep, require_actor
from engine.flows.assignees_attrs import load_attributes, save_attributes
from engine.flows.inbox import BOXES, MAX_PAGE, Box, count_boxes, list_tasks, task_detail
from engine.flows.tasks_service import MAX_BATCH, TaskResult, TaskService
from engine.storage.uow import UnitOfWork

router = APIRouter(tags=["tasks"])
tasks_router = APIRouter(prefix="/tasks", dependencies=[Depends(require_actor)])
TASK = "/{task_id}"
ERRORS = problem_responses(403, 404, 409, 422)


def get_task_service(request: Request) -> TaskService:
    """The app's task service, built on first use next to the records service."""
    state = request.app.state
    service = getattr(state, "tasks", None)
    if service is None:
        service = state.tasks = TaskService(db=state.db, records=get_record_service(request))
    return service


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


class DecisionIn(BaseModel):
    values: dict[str, Any] = Field(default_factory=dict, description="Field values by key")
    comment: str | None = Field(None, max_length=20_000)


class ReturnIn(BaseModel):
    target: str = Field("previous", description='"previous", "start" or an earlier node key')
    comment: str | None = Field(None, max_length=20_000)


class UserIn(BaseModel):
    user_id: int
    reason: str | None = Field(None, max_length=2000)


class SignersIn(BaseModel):
    user_ids: list[int] = Field(min_length=1, max_length=50)
    position: Literal["before", "after"] = "after"


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=20_000)
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class WithdrawIn(BaseModel):
    comment: str | None = Field(None, max_length=20_000)


class BatchIn(BaseModel):
    task_ids: list[int] = Field(min_length=1, max_length=MAX_BATCH)
    comment: str | None = Field(None, max_length=20_000)


class AttributesIn(BaseModel):
    attributes: dict[str, Any] = Field(
        description='e.g. {"skills": {"printer": 3}, "regions": ["east"]}'
    )


# --- inbox ---------------------------------------------------------------------------------------


@tasks_router.get("", summary="The task inbox")
def inbox(
    actor: RequiredActorDep,
    db: DatabaseDep,
    box: Annotated[Literal["mine", "pool", "cc", "done"], Query()] = "mine",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[int | None, Query(description="Last id of the previous page")] = None,
) -> dict[str, Any]:
    """Tasks of `box` (newest first) and how many each box holds."""
    chosen: Box = box if box in BOXES else "mine"
    with UnitOfWork(db) as uow:
        items = list_tasks(uow.conn, user_id=actor.user_id, box=chosen, limit=limit, before=before)
        counts = count_boxes(uow.conn, user_id=actor.user_id)
    following = items[-1]["id"] if len(items) == limit else None
    return {"box": chosen, "items": items, "counts": counts, "next_before": following}


@tasks_router.post("/batch-approve", responses=ERRORS, summary="Approve several tasks")
def batch_approve(body: BatchIn, actor: RequiredActorDep, tasks: TaskServiceDep) -> dict[str, Any]:
    """Each task approved in its own transaction; one report line per task."""
    items = tasks.batch_approve(task_ids=body.task_ids, actor=actor, comment=body.comment)
    return {"items": [item.to_json() for item in items], "ok": all(i.ok for i in items)}


@tasks_router.get(TASK, responses=ERRORS, summary="One task, with its record as the task shows it")
def detail(
    task_id: int, actor: RequiredActorDep, db: DatabaseDep, request: Request
) -> dict[str, Any]:
    records = get_record_service(request)
    with UnitOfWork(db) as uow:
        out = task_detail(uow, records=records, task_id=task_id, actor=actor, now=uow.clock())
        uow.commit()  # opening a CC task marks it read
    return out


# --- operations ----------------------------------------------------------------------------------


def _json(result: TaskResult) -> dict[str, Any]:
    return result.to_json()


@tasks_router.post(TASK + "/approve", responses=ERRORS)
def approve(
    task_id: int, body: DecisionIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.approve(task_id=task_id, actor=actor, values=body.values, comment=body.comment)
    )


@tasks_router.post(TASK + "/complete", responses=ERRORS)
def complete(
    task_id: int, body: DecisionIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.complete(task_id=task_id, actor=actor, values=body.values, comment=body.comment)
    )


@tasks_router.post(TASK + "/reject", responses=ERRORS)
def reject(
    task_id: int, body: DecisionIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.reject(task_id=task_id, actor=actor, values=body.values, comment=body.comment)
    )


@tasks_router.post(TASK + "/return", responses=ERRORS)
def return_task(
    task_id: int, body: ReturnIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.return_to(task_id=task_id, actor=actor, target=body.target, comment=body.comment)
    )


@tasks_router.post(TASK + "/transfer", responses=ERRORS)
def transfer(
    task_id: int, body: UserIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.transfer(task_id=task_id, actor=actor, to_user=body.user_id, reason=body.reason)
    )


@tasks_router.post(TASK + "/delegate", responses=ERRORS)
def delegate(
    task_id: int, body: UserIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(tasks.delegate(task_id=task_id, actor=actor, to_user=body.user_id))


@tasks_router.post(TASK + "/add-signer", responses=ERRORS)
def add_signer(
    task_id: int, body: SignersIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.add_signer(
            task_id=task_id, actor=actor, user_ids=body.user_ids, position=body.position
        )
    )


@tasks_router.post(TASK + "/claim", responses=ERRORS)
def claim(task_id: int, actor: RequiredActorDep, tasks: TaskServiceDep) -> dict[str, Any]:
    return _json(tasks.claim(task_id=task_id, actor=actor))


@tasks_router.post(TASK + "/withdraw", responses=ERRORS)
def withdraw(
    task_id: int, body: WithdrawIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(tasks.withdraw(task_id=task_id, actor=actor, comment=body.comment))


@tasks_router.post(TASK + "/comment", responses=ERRORS)
def comment(
    task_id: int, body: CommentIn, actor: RequiredActorDep, tasks: TaskServiceDep
) -> dict[str, Any]:
    return _json(
        tasks.comment(task_id=task_id, actor=actor, body=body.body, file_ids=body.file_ids)
    )


# --- user attributes ------------------------------------------------------------------------------


@router.get("/org/users/{user_id}/attributes", tags=["organisation"], responses=ERRORS)
def get_attributes(user_id: int, actor: AdminActorDep, db: DatabaseDep) -> dict[str, Any]:
    with UnitOfWork(db) as uow:
        uow.users.get(user_id=user_id)
        found = load_attributes(uow.conn, [user_id]).get(user_id, {})
    return {"user_id": user_id, "attributes": found}


@router.put("/org/users/{user_id}/attributes", tags=["organisation"], responses=ERRORS)
def put_attributes(
    user_id: int, body: AttributesIn, actor: AdminActorDep, db: DatabaseDep
) -> dict[str, Any]:
    """Replace the user's attributes (skills as a list or {name: level}, regions as a list)."""
    with UnitOfWork(db) as uow:
        saved = save_attributes(
            uow.conn, user_id=user_id, attributes=body.attributes, now=uow.clock()
        )
        uow.commit()
    return {"user_id": user_id, "attributes": saved}


router.include_router(tasks_router)

__all__ = ["get_task_service", "router"]

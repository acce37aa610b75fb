"""Scheduled delivery over HTTP: send a dashboard's delivery now (administrators), on top of
its schedule. The mails are queued as jobs and sent by the worker (docs/dashboards.md)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.schemas import problem_responses
from api.security import AdminActorDep
from engine.reports.delivery import send_now
from engine.storage.uow import UnitOfWork

router = APIRouter(tags=["reports"])


class DeliverySentOut(BaseModel):
    queued: int = Field(description="Mails queued, one per recipient")
    user_ids: list[int] = Field(description="The recipients")


@router.post(
    "/apps/{app}/dashboards/{dashboard}/deliveries/{delivery}/send",
    status_code=202,
    response_model=DeliverySentOut,
    responses=problem_responses(403, 404),
)
def send_delivery_now(
    app: str, dashboard: str, delivery: str, actor: AdminActorDep, db: DatabaseDep
) -> DeliverySentOut:
    """Queue the delivery's mails now, each run as its recipient; the schedule is unchanged."""
    with UnitOfWork(db) as uow:
        user_ids = send_now(uow, app=app, dashboard=dashboard, key=delivery, now=uow.clock())
        uow.audit.record(
            actor=actor.user_id,
            action="report.delivery.send",
            target_kind="dashboard",
            target_key=f"{app}.{dashboard}",
            detail={"delivery": delivery, "recipients": len(user_ids)},
        )
        uow.commit()
    return DeliverySentOut(queued=len(user_ids), user_ids=user_ids)


__all__ = ["router"]

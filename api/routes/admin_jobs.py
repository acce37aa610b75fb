"""Administrators' view of the job queue and the webhook delivery log; retry failed jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.security import AdminActorDep
from engine.jobs.admin import JobRecord, get_job, list_jobs, retry_job
from engine.outbox.deliveries import endpoint_health, list_deliveries
from engine.storage.uow import UnitOfWork

router = APIRouter(prefix="/admin", tags=["admin"])

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
Cursor = Query(None, pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the last page")


class JobOut(BaseModel):
    id: int
    kind: str
    key: str | None
    status: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    max_attempts: int
    locked_by: str | None
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        return cls(**{name: getattr(job, name) for name in cls.model_fields})


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older jobs")


class DeliveryOut(BaseModel):
    id: int
    job_id: int | None
    delivery_id: str
    endpoint: str
    attempt: int
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int
    at: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class EndpointOut(BaseModel):
    endpoint: str
    failing: bool
    attempts: int
    failures_since_success: int
    last_at: datetime
    last_ok_at: datetime | None
    last_status_code: int | None
    last_error: str | None


@router.get("/jobs", response_model=JobPage)
def admin_list_jobs(
    actor: AdminActorDep,
    db: DatabaseDep,
    status: JobStatus | None = None,
    kind: str | None = None,
    cursor: str | None = Cursor,
    limit: int = Query(50, ge=1, le=500),
) -> JobPage:
    """Jobs newest first; `status=failed` lists what needs attention."""
    with UnitOfWork(db) as uow:
        jobs = list_jobs(
            uow.conn,
            status=status,
            kind=kind,
            before_id=None if cursor is None else int(cursor),
            limit=limit + 1,
        )
    page = jobs[:limit]
    more = len(jobs) > limit
    return JobPage(
        items=[JobOut.of(job) for job in page], next_cursor=str(page[-1].id) if more else None
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
def admin_get_job(job_id: int, actor: AdminActorDep, db: DatabaseDep) -> JobOut:
    with UnitOfWork(db) as uow:
        return JobOut.of(get_job(uow.conn, job_id=job_id))


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
def admin_retry_job(job_id: int, actor: AdminActorDep, db: DatabaseDep) -> JobOut:
    """Queue a failed or cancelled job again, due now, with a fresh count of attempts."""
    with UnitOfWork(db) as uow:
        job = retry_job(uow.conn, job_id=job_id, now=uow.clock())
        uow.audit.record(
            actor=actor.user_id,
            action="job.retry",
            target_kind="job",
            target_key=str(job_id),
            detail={"kind": job.kind},
        )
        uow.commit()
    return JobOut.of(job)


@router.get("/webhooks/deliveries", response_model=DeliveryPage)
def admin_list_deliveries(
    actor: AdminActorDep,
    db: DatabaseDep,
    endpoint: str | None = None,
    ok: bool | None = None,
    cursor: str | None = Cursor,
    limit: int = Query(50, ge=1, le=500),
) -> DeliveryPage:
    """Every webhook delivery attempt, newest first; `ok=false` for the failures."""
    with UnitOfWork(db) as uow:
        rows = list_deliveries(
            uow.conn,
            endpoint=endpoint,
            ok=ok,
            before_id=None if cursor is None else int(cursor),
            limit=limit + 1,
        )
    page = rows[:limit]
    return DeliveryPage(
        items=[DeliveryOut(**{n: getattr(d, n) for n in DeliveryOut.model_fields}) for d in page],
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )


@router.get("/webhooks/endpoints", response_model=list[EndpointOut])
def admin_list_endpoints(
    actor: AdminActorDep, db: DatabaseDep, failing: bool = False
) -> list[EndpointOut]:
    """Each endpoint's health, failing ones first: failing while its last attempt failed."""
    with UnitOfWork(db) as uow:
        health = endpoint_health(uow.conn)
    return [
        EndpointOut(
            endpoint=h.endpoint,
            failing=h.is_failing,
            attempts=h.attempts,
            failures_since_success=h.failures_since_success,
            last_at=h.last_at,
            last_ok_at=h.last_ok_at,
            last_status_code=h.last_status_code,
            last_error=h.last_error,
        )
        for h in health
        if h.is_failing or not failing
    ]


__all__ = ["router"]

"""Flows over HTTP: manual start, instances (admin), a record's timeline, terminate and retry
(admin), simulation of a draft, inbound webhooks with a per-flow secret.

Every route checks its own caller: the inbound hook authenticates by its secret, not a user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import PermissionDenied
from engine.flows.runtime_env import environment
from engine.flows.service import (
    BAD_HOOK,
    FlowService,
    history_json,
    instance_json,
    token_json,
)
from engine.flows.simulate import simulate_flow

router = APIRouter(tags=["flows"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
HOOK_HEADER = "X-Tangram-Hook-Secret"


def get_flow_service(request: Request) -> FlowService:
    """The app's flow service, built on first use next to `app.state.db`."""
    state = request.app.state
    service = getattr(state, "flows", None)
    if service is None:
        service = state.flows = FlowService(db=state.db, env=environment())
    return service


ServiceDep = Annotated[FlowService, Depends(get_flow_service)]


class StartIn(BaseModel):
    record_id: int | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class TerminateIn(BaseModel):
    reason: str = Field("terminated", max_length=500)


class SimulateIn(BaseModel):
    definition: dict[str, Any] | None = Field(
        None, description="A draft flow definition; the published one when absent"
    )
    record: dict[str, Any] | None = Field(None, description="Field values of a sample record")
    at: datetime | None = Field(None, description="The simulated start time (default: now)")
    outcomes: dict[str, Literal["approved", "rejected", "done", "returned"]] = Field(
        default_factory=dict, description="Outcome of each user-task node (default approved)"
    )


@router.post("/apps/{app}/flows/{flow}/instances", status_code=201, responses=ERRORS)
def start_instance(
    app: str, flow: str, body: StartIn, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    """Start a manual flow, on a record the caller can read."""
    row = service.start(
        app=app, flow=flow, record_id=body.record_id, actor=actor, variables=body.variables
    )
    return instance_json(row)


@router.get("/apps/{app}/flow-instances", responses=ERRORS)
def list_instances(
    app: str,
    service: ServiceDep,
    actor: RequiredActorDep,
    flow: str | None = None,
    status: Literal["running", "completed", "terminated", "error"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(description="Only instances with a smaller id")] = None,
) -> dict[str, Any]:
    """Instances of an app, newest first (administrators)."""
    rows = service.instances(
        app=app, actor=actor, flow=flow, status=status, limit=limit, before_id=before
    )
    return {"items": [instance_json(r) for r in rows]}


@router.get("/flow-instances/{instance_id}", responses=ERRORS)
def get_instance(instance_id: int, service: ServiceDep, actor: RequiredActorDep) -> dict[str, Any]:
    """An instance with its tokens and its steps."""
    detail = service.instance(instance_id=instance_id, actor=actor)
    return {
        **instance_json(detail.instance),
        "tokens": [token_json(t) for t in detail.tokens],
        "history": [history_json(h) for h in detail.history],
    }


@router.post("/flow-instances/{instance_id}/terminate", responses=ERRORS)
def terminate_instance(
    instance_id: int, body: TerminateIn, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    return instance_json(
        service.terminate(instance_id=instance_id, actor=actor, reason=body.reason)
    )


@router.post("/flow-instances/{instance_id}/retry", responses=ERRORS)
def retry_instance(
    instance_id: int, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    """Redo the failed step of an instance in `error`."""
    return instance_json(service.retry(instance_id=instance_id, actor=actor))


@router.get("/apps/{app}/forms/{form}/records/{record_id}/timeline", responses=ERRORS)
def record_timeline(
    app: str, form: str, record_id: int, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, Any]:
    """The flow instances on a record and every step they took, oldest first."""
    rows, history = service.timeline(app=app, form=form, record_id=record_id, actor=actor)
    return {
        "instances": [instance_json(r) for r in rows],
        "steps": [history_json(h) for h in history],
    }


@router.post("/apps/{app}/flows/{flow}/simulate", responses=ERRORS)
def simulate(
    app: str, flow: str, body: SimulateIn, request: Request, actor: RequiredActorDep
) -> dict[str, Any]:
    """Run the flow (or a draft) on a sample record; nothing is kept (administrators)."""
    if not actor.is_admin:
        raise PermissionDenied("only administrators simulate flows")
    return simulate_flow(
        db=request.app.state.db,
        env=environment(),
        app=app,
        flow=flow,
        record=body.record,
        at=body.at or datetime.now(UTC),
        draft=body.definition,
        outcomes=body.outcomes,
        initiator_id=actor.user_id,
    )


@router.post("/apps/{app}/flows/{flow}/hook-secret", status_code=201, responses=ERRORS)
def new_hook_secret(
    app: str, flow: str, service: ServiceDep, actor: RequiredActorDep
) -> dict[str, str]:
    """A new secret for the flow's inbound webhook, shown once (administrators)."""
    secret = service.new_hook_secret(app=app, flow=flow, actor=actor)
    return {"secret": secret, "header": HOOK_HEADER, "url": f"/api/v1/hooks/{app}/{flow}"}


@router.post("/hooks/{app}/{flow}", status_code=202, responses=ERRORS)
def inbound_hook(
    app: str,
    flow: str,
    service: ServiceDep,
    payload: Annotated[dict[str, Any], Body()],
    secret: Annotated[str | None, Header(alias=HOOK_HEADER)] = None,
) -> dict[str, Any]:
    """Start a webhook flow with the JSON body as its variables."""
    if not secret:
        raise PermissionDenied("the hook secret header is missing", code=BAD_HOOK)
    row = service.start_by_hook(app=app, flow=flow, secret=secret, payload=payload)
    return instance_json(row)


__all__ = ["get_flow_service", "router"]

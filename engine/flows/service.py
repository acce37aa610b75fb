"""`FlowService`: flow use cases, each in one unit of work — manual and webhook starts,
instances and their timeline, admin terminate and retry, webhook secrets, schedules."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError, PermissionDenied, TransitionError
from engine.flows.actions import jsonable
from engine.flows.cron import parse_cron
from engine.flows.instances import FlowStore, HistoryRow, InstanceRow, TokenRow
from engine.flows.runtime_env import FlowEnvironment
from engine.flows.runtime_steps import Stepper
from engine.forms.record_access import Who, form_access, require_in_scope
from engine.identity.actor import Actor
from engine.storage.sqltypes import utc_now
from engine.storage.tables_flows import flow_hook_secrets
from engine.storage.uow import UnitOfWork

NOT_MANUAL = "flow.not-manual"
BAD_HOOK = "flow.bad-hook-secret"
NOT_WEBHOOK = "flow.not-webhook"
SCHEDULE_JOB = "flow.schedule"


@dataclass(frozen=True, slots=True)
class InstanceDetail:
    instance: InstanceRow
    tokens: tuple[TokenRow, ...]
    history: tuple[HistoryRow, ...]


def instance_json(row: InstanceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "app": row.app,
        "flow": row.flow,
        "version": row.version,
        "form": row.form,
        "record_id": row.record_id,
        "status": row.status,
        "initiator_id": row.initiator_id,
        "parent_token_id": row.parent_token_id,
        "variables": jsonable(row.variables),
        "error": None
        if row.error_code is None
        else {"code": row.error_code, **{k: v for k, v in (row.error_detail or {}).items()}},
        "started_at": row.started_at.isoformat(),
        "ended_at": None if row.ended_at is None else row.ended_at.isoformat(),
    }


def token_json(row: TokenRow) -> dict[str, Any]:
    due = None if row.due_at is None else row.due_at.isoformat()
    return {"id": row.id, "node": row.node, "status": row.status, "due_at": due}


def history_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "instance_id": row.instance_id,
        "step": row.step,
        "node": row.node,
        "event": row.event,
        "actor_id": row.actor_id,
        "at": row.at.isoformat(),
        "detail": row.detail,
    }


class FlowService:
    """Flow use cases over one database, with the app's flow environment."""

    def __init__(
        self,
        *,
        db: sa.Engine | sa.Connection,
        env: FlowEnvironment,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._env = env
        self._clock = clock

    def _unit(self) -> UnitOfWork:
        return UnitOfWork(self._db, clock=self._clock)

    def start(
        self,
        *,
        app: str,
        flow: str,
        record_id: int | None,
        actor: Actor,
        variables: Mapping[str, Any] | None = None,
    ) -> InstanceRow:
        """Start a manual flow; the actor must be able to read the record.

        Raises:
            TransitionError: `flow.not-manual` for a flow with another trigger.
            NotFoundError: the flow, or a record the actor cannot read.
        """
        with self._unit() as uow:
            version = self._env.flow(uow, app=app, key=flow)
            if version.compiled.spec.trigger.type != "manual" or not version.compiled.spec.enabled:
                raise TransitionError(f"flow {flow!r} is not started by hand", code=NOT_MANUAL)
            if version.form is not None and record_id is not None:
                self._require_read(uow, app, version.form, record_id, actor)
            stepper = Stepper(uow, now=self._clock(), actor_id=actor.user_id, env=self._env)
            instance_id = stepper.start(
                app=app,
                flow=flow,
                record_id=record_id,
                initiator_id=actor.user_id,
                variables=dict(variables or {}),
            )
            found = FlowStore(uow.conn).instance(instance_id)
            uow.commit()
            return found

    def instances(
        self,
        *,
        app: str,
        actor: Actor,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[InstanceRow]:
        _require_admin(actor)
        with self._unit() as uow:
            return FlowStore(uow.conn).instances(
                app=app, flow=flow, status=status, limit=limit, before_id=before_id
            )

    def instance(self, *, instance_id: int, actor: Actor) -> InstanceDetail:
        """An instance with its tokens and history: for admins, its initiator and the users who
        can read its record."""
        with self._unit() as uow:
            store = FlowStore(uow.conn)
            row = store.instance(instance_id)
            if not (actor.is_admin or actor.user_id == row.initiator_id):
                if row.form is None or row.record_id is None:
                    raise NotFoundError(
                        f"no flow instance {instance_id}", code="flow.instance-not-found"
                    )
                self._require_read(uow, row.app, row.form, row.record_id, actor)
            return InstanceDetail(
                instance=row,
                tokens=tuple(store.tokens(instance_id)),
                history=tuple(store.history([instance_id])),
            )

    def timeline(
        self, *, app: str, form: str, record_id: int, actor: Actor
    ) -> tuple[list[InstanceRow], list[HistoryRow]]:
        """Every flow instance on a record and their steps, oldest first."""
        with self._unit() as uow:
            self._require_read(uow, app, form, record_id, actor)
            store = FlowStore(uow.conn)
            rows = store.instances(app=app, form=form, record_id=record_id, limit=1000)
            rows.reverse()
            return rows, store.history([r.id for r in rows])

    def terminate(
        self, *, instance_id: int, actor: Actor, reason: str = "terminated"
    ) -> InstanceRow:
        _require_admin(actor)
        with self._unit() as uow:
            stepper = Stepper(uow, now=self._clock(), actor_id=actor.user_id, env=self._env)
            stepper.terminate(instance_id, reason=reason)
            found = FlowStore(uow.conn).instance(instance_id)
            uow.commit()
            return found

    def retry(self, *, instance_id: int, actor: Actor) -> InstanceRow:
        _require_admin(actor)
        with self._unit() as uow:
            stepper = Stepper(uow, now=self._clock(), actor_id=actor.user_id, env=self._env)
            stepper.retry(instance_id)
            found = FlowStore(uow.conn).instance(instance_id)
            uow.commit()
            return found

    # --- inbound webhooks -------------------------------------------------------------------------

    def new_hook_secret(self, *, app: str, flow: str, actor: Actor) -> str:
        """A new secret for `POST /hooks/{app}/{flow}` (shown once; only its hash is kept)."""
        _require_admin(actor)
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._unit() as uow:
            self._webhook_flow(uow, app, flow)
            table = flow_hook_secrets
            uow.conn.execute(sa.delete(table).where(table.c.app == app, table.c.flow == flow))
            uow.conn.execute(
                sa.insert(table).values(
                    app=app, flow=flow, secret_sha256=digest, created_at=self._clock()
                )
            )
            uow.commit()
        return token

    def start_by_hook(
        self, *, app: str, flow: str, secret: str, payload: Mapping[str, Any]
    ) -> InstanceRow:
        """Start a webhook flow; the payload becomes the instance's variables.

        Raises:
            PermissionDenied: `flow.bad-hook-secret` (also when no secret was ever set).
        """
        with self._unit() as uow:
            table = flow_hook_secrets
            stored = uow.conn.execute(
                sa.select(table.c.secret_sha256).where(table.c.app == app, table.c.flow == flow)
            ).scalar_one_or_none()
            given = hashlib.sha256(secret.encode()).hexdigest()
            if stored is None or not hmac.compare_digest(stored, given):
                raise PermissionDenied("wrong or missing hook secret", code=BAD_HOOK)
            self._webhook_flow(uow, app, flow)
            record_id = payload.get("record_id")
            stepper = Stepper(uow, now=self._clock(), env=self._env)
            instance_id = stepper.start(
                app=app,
                flow=flow,
                record_id=record_id if isinstance(record_id, int) else None,
                initiator_id=None,
                trigger="webhook",
                variables=dict(payload),
            )
            found = FlowStore(uow.conn).instance(instance_id)
            uow.commit()
            return found

    def _webhook_flow(self, uow: UnitOfWork, app: str, flow: str) -> None:
        spec = self._env.flow(uow, app=app, key=flow).compiled.spec
        if spec.trigger.type != "webhook" or not spec.enabled:
            raise TransitionError(f"flow {flow!r} is not started by a webhook", code=NOT_WEBHOOK)

    # --- schedules --------------------------------------------------------------------------------

    def sync_schedules(self, *, app: str) -> int:
        """Queue the next run of every schedule flow of `app` not queued yet; returns how many."""
        with self._unit() as uow:
            queued = queue_schedules(uow, self._env, app=app, now=self._clock())
            uow.commit()
            return queued

    def _require_read(
        self, uow: UnitOfWork, app: str, form: str, record_id: int, actor: Who
    ) -> None:
        access = form_access(uow=uow, who=actor, app=app, form=form)
        _definition, store = self._env.kit.open(uow, app, form)
        require_in_scope(
            uow.conn, access, store.layout.main, record_id, who=actor, now=self._clock()
        )


def queue_schedules(uow: UnitOfWork, env: FlowEnvironment, *, app: str, now: datetime) -> int:
    """Queue the next occurrence of each enabled schedule flow (a queued one is kept)."""
    from engine.jobs.queue import enqueue

    queued = 0
    for version in env.flows(uow, app=app):
        trigger = version.compiled.spec.trigger
        if trigger.type != "schedule" or trigger.cron is None or not version.compiled.spec.enabled:
            continue
        due = parse_cron(trigger.cron).next_after(now, trigger.timezone)
        payload = {"app": app, "flow": version.key, "at": due.isoformat()}
        key = f"{SCHEDULE_JOB}:{app}:{version.key}:{due.isoformat()}"
        if enqueue(uow.conn, kind=SCHEDULE_JOB, payload=payload, due_at=due, key=key) is not None:
            queued += 1
    return queued


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("only administrators manage flow instances")


__all__ = [
    "BAD_HOOK",
    "NOT_MANUAL",
    "NOT_WEBHOOK",
    "SCHEDULE_JOB",
    "FlowService",
    "InstanceDetail",
    "history_json",
    "instance_json",
    "queue_schedules",
    "token_json",
]

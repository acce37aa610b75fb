"""Job handlers of the flow engine: timers, wait re-checks and timeouts, date_reached and
schedule starts. Each is idempotent: a token that no longer waits is left alone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from engine.errors import NotFoundError
from engine.flows.runtime_env import environment
from engine.flows.runtime_steps import Stepper
from engine.flows.service import SCHEDULE_JOB, queue_schedules
from engine.flows.triggers import DATE_JOB
from engine.jobs.types import JobContext, JobHandler


def _stepper(ctx: JobContext) -> Stepper:
    return Stepper(ctx.uow, now=ctx.now, env=environment())


def fire_timer(ctx: JobContext) -> None:
    _stepper(ctx).fire_timer(int(ctx.payload["token_id"]))


def recheck_wait(ctx: JobContext) -> None:
    _stepper(ctx).recheck_wait(int(ctx.payload["token_id"]))


def time_out_wait(ctx: JobContext) -> None:
    _stepper(ctx).time_out_wait(int(ctx.payload["token_id"]))


def start_on_date(ctx: JobContext) -> None:
    """Start a date_reached flow, unless the record is gone or its date moved since."""
    app, flow, record_id = ctx.payload["app"], ctx.payload["flow"], int(ctx.payload["record_id"])
    env = environment()
    try:
        version = env.flow(ctx.uow, app=app, key=flow)
    except NotFoundError:
        return
    if version.form is None or not version.compiled.spec.enabled:
        return
    _definition, store = env.kit.open(ctx.uow, app, version.form)
    try:
        record = store.get(record_id=record_id)
    except NotFoundError:
        return
    trigger = version.compiled.spec.trigger
    value = record.values.get(trigger.date_field or "")
    if value is None:
        return
    from engine.flows.runtime import as_moment, duration

    due = as_moment(value) + duration(trigger.offset or "PT0S")
    if due != datetime.fromisoformat(str(ctx.payload["at"])):
        return  # the date moved: the record change queued the new start
    _stepper(ctx).start(
        app=app, flow=flow, record_id=record_id, initiator_id=None, trigger="date_reached"
    )


def start_on_schedule(ctx: JobContext) -> None:
    """Start a schedule flow, then queue its next occurrence (keys name the occurrence, so the
    next one is not mistaken for this running job)."""
    app, flow = ctx.payload["app"], ctx.payload["flow"]
    env = environment()
    try:
        version = env.flow(ctx.uow, app=app, key=flow)
    except NotFoundError:
        return
    spec = version.compiled.spec
    if spec.trigger.type == "schedule" and spec.enabled:
        _stepper(ctx).start(
            app=app, flow=flow, record_id=None, initiator_id=None, trigger="schedule"
        )
    queue_schedules(ctx.uow, env, app=app, now=ctx.now)


def job_handlers() -> Mapping[str, JobHandler]:
    return {
        "flow.timer": fire_timer,
        "flow.wait": recheck_wait,
        "flow.wait_timeout": time_out_wait,
        DATE_JOB: start_on_date,
        SCHEDULE_JOB: start_on_schedule,
    }


__all__ = [
    "fire_timer",
    "job_handlers",
    "recheck_wait",
    "start_on_date",
    "start_on_schedule",
    "time_out_wait",
]

"""Job handlers for the SLA wake-ups (`sla.warn`, `sla.breach`).

Both re-run the SLA of the record at the job's time: whatever is due then (a warning, a
breach, an escalation step) happens once, because the state records what was done; a stale job
(the deadline moved, the target was met, the record is gone) finds nothing due and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.flows.sla_service import SlaService
from engine.jobs.types import JobContext, JobHandler

JOB_KINDS = ("sla.warn", "sla.breach")


def job_handlers(service: SlaService) -> Mapping[str, JobHandler]:
    """The handlers to register with the worker, by job kind."""

    def handle(ctx: JobContext) -> None:
        payload = ctx.payload
        service.tick(
            ctx.uow,
            app=str(payload["app"]),
            form=str(payload["form"]),
            record_id=int(payload["record_id"]),
            sla=str(payload["sla"]),
            now=ctx.now,
        )

    return {kind: handle for kind in JOB_KINDS}


__all__ = ["JOB_KINDS", "job_handlers"]

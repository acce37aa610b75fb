"""Job handlers used by the worker tests and the killed-worker subprocess."""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.jobs import JobContext, enqueue
from tests.engine.jobs.conftest import EFFECTS


def write_effect(ctx: JobContext) -> None:
    ctx.uow.conn.execute(
        EFFECTS.insert().values(key=str(ctx.payload["key"]), job_id=ctx.job_id, worker=ctx.worker)
    )


def write_then_fail(ctx: JobContext) -> None:
    write_effect(ctx)
    raise RuntimeError("boom")


def write_then_hang(ctx: JobContext) -> None:
    """Write the effect, tell the test through a file, then hang until killed."""
    write_effect(ctx)
    Path(os.environ["JOBTEST_MARKER"]).write_text(str(os.getpid()))
    time.sleep(120)


def repeat_with_same_key(ctx: JobContext) -> None:
    write_effect(ctx)
    left = int(ctx.payload["left"])
    if left > 0:
        payload = {"key": f"{ctx.payload['key']}+", "left": left - 1}
        enqueue(ctx.uow.conn, kind=ctx.kind, payload=payload, due_at=ctx.now, key="repeat")

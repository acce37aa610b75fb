"""Job handlers used by the worker tests and the killed-worker subprocess."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa

from engine.jobs import JobContext, enqueue

# The "__" makes the suite's clean-up drop it like a form table after each test.
EFFECTS = sa.Table(
    "jobtest__effects",
    sa.MetaData(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
)


def effect_rows(db: sa.Engine) -> list[tuple[str, int]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(EFFECTS.c.key, EFFECTS.c.job_id).order_by(EFFECTS.c.key))
        return [(str(k), int(j)) for k, j in rows]


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


def broken_provider() -> dict[str, object]:
    raise RuntimeError("this provider is broken")


def write_unless_told_to_fail(ctx: JobContext) -> None:
    write_effect(ctx)
    if ctx.payload.get("fail"):
        raise RuntimeError("told to fail")


CALLS: list[str] = []  # keys of the jobs handled, in order, by the counting handlers


def count_then_write(ctx: JobContext) -> None:
    CALLS.append(str(ctx.payload["key"]))
    write_unless_told_to_fail(ctx)

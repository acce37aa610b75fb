"""Fixed-window rate limits counted in the database, so every process shares them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.public.errors import RateLimited
from engine.storage.tables_public import public_rate_counters as counters


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the window holding `now` (windows are aligned on the Unix epoch)."""
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - seconds % window_seconds, tz=now.tzinfo)


def hit(
    conn: sa.Connection, *, bucket: str, limit: int, window_seconds: int, now: datetime
) -> None:
    """Count one request in `bucket`; `RateLimited` when it exceeds `limit` in this window.

    A refused request still counts: hammering a closed window keeps it closed, never longer.
    """
    start = window_start(now, window_seconds)
    hits = _increment(conn, bucket[:200], start)
    if hits == 1:  # a new window: the bucket's older rows are of no use any more
        conn.execute(
            sa.delete(counters).where(
                counters.c.bucket == bucket[:200], counters.c.window_start < start
            )
        )
    if hits > limit:
        wait = (start + timedelta(seconds=window_seconds) - now).total_seconds()
        raise RateLimited("too many requests; try again later", retry_after=max(1, math.ceil(wait)))


def _increment(conn: sa.Connection, bucket: str, start: datetime) -> int:
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(counters).values(bucket=bucket, window_start=start, hits=1)
    upsert = statement.on_conflict_do_update(
        index_elements=[counters.c.bucket, counters.c.window_start],
        set_={"hits": counters.c.hits + 1},
    )
    return int(conn.execute(upsert.returning(counters.c.hits)).scalar_one())


__all__ = ["hit", "window_start"]

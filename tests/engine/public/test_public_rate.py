"""Rate limits counted in the database: fixed windows, shared by connections, pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.public.errors import RateLimited
from engine.public.rate import hit, window_start
from engine.storage.tables_public import public_rate_counters

T0 = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def test_windows_are_aligned() -> None:
    assert window_start(T0, 60) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert window_start(T0, 3600) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_the_limit_holds_within_a_window_and_resets_after(conn: sa.Connection) -> None:
    for _ in range(3):
        hit(conn, bucket="client:a", limit=3, window_seconds=60, now=T0)
    with pytest.raises(RateLimited) as refused:
        hit(conn, bucket="client:a", limit=3, window_seconds=60, now=T0)
    assert refused.value.code == "public.rate-limited" and refused.value.retry_after == 55
    hit(conn, bucket="client:b", limit=3, window_seconds=60, now=T0)  # other buckets unaffected
    later = T0 + timedelta(seconds=60)
    hit(conn, bucket="client:a", limit=3, window_seconds=60, now=later)
    rows = conn.execute(
        sa.select(public_rate_counters.c.window_start, public_rate_counters.c.hits).where(
            public_rate_counters.c.bucket == "client:a"
        )
    ).all()
    assert [(row.window_start, row.hits) for row in rows] == [(window_start(later, 60), 1)]


def test_counts_are_shared_by_separate_connections(migrated_engine: sa.Engine) -> None:
    try:
        for _ in range(2):
            with migrated_engine.begin() as one:
                hit(one, bucket="shared", limit=2, window_seconds=60, now=T0)
        with migrated_engine.begin() as other, pytest.raises(RateLimited):
            hit(other, bucket="shared", limit=2, window_seconds=60, now=T0)
    finally:
        with migrated_engine.begin() as cleanup:
            cleanup.execute(sa.delete(public_rate_counters))

"""The shared schedule: the next run of a daily, weekly or monthly schedule in its time zone
(strictly after the given time), and job chains that a re-import does not duplicate."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.reports.schedule import JobChain, local_day, next_interval, next_run
from engine.reports.spec import Schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ({"every": "day", "at": "23:59"}, local(2026, 1, 1, 12), local(2026, 1, 1, 23, 59)),
        ({"every": "day", "at": "23:59"}, local(2026, 1, 1, 23, 59), local(2026, 1, 2, 23, 59)),
        ({"every": "week", "weekday": "mon"}, local(2026, 11, 29, 12), local(2026, 11, 30, 8)),
        ({"every": "week", "weekday": "mon"}, local(2026, 11, 30, 8), local(2026, 12, 7, 8)),
        ({"every": "week", "weekday": "mon"}, local(2026, 11, 30, 7, 59), local(2026, 11, 30, 8)),
        ({"every": "month", "day": 31}, local(2026, 2, 1), local(2026, 2, 28, 8)),
        ({"every": "month", "day": 31}, local(2026, 2, 28, 9), local(2026, 3, 31, 8)),
        ({"every": "month", "day": 1}, local(2026, 12, 1, 8), local(2027, 1, 1, 8)),
    ],
)
def test_next_run(schedule: dict[str, object], after: datetime, expected: datetime) -> None:
    parsed = Schedule.model_validate(schedule | {"timezone": "Asia/Shanghai"})
    found = next_run(parsed, after.astimezone(UTC))
    assert found == expected and found.tzinfo == UTC
    assert local_day(parsed, found) == expected.date()


def test_utc_is_the_default_zone() -> None:
    schedule = Schedule(every="day", at="08:00")
    assert next_run(schedule, datetime(2026, 1, 1, 9, tzinfo=UTC)) == datetime(
        2026, 1, 2, 8, tzinfo=UTC
    )


def test_an_interval_starts_now() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_interval(None, minutes=30, now=now) == now
    assert next_interval(now, minutes=30, now=now).minute == 30


def test_a_chain_is_one_prefix(migrated_engine: sa.Engine) -> None:
    from engine.storage.tables_jobs import job_queue

    due = datetime(2026, 1, 1, tzinfo=UTC)
    ab = JobChain.of("test.chain", "chain", "app", "a_b")
    similar = JobChain.of("test.chain", "chain", "app", "axb")  # `_` is no LIKE wildcard here
    try:
        with migrated_engine.begin() as conn:
            assert not ab.is_running(conn)
            assert ab.queue(conn, due_at=due, suffix="1", payload={}) is not None
            assert ab.queue(conn, due_at=due, suffix="1", payload={}) is None  # same link
            assert ab.is_running(conn) and not similar.is_running(conn)
    finally:
        with migrated_engine.begin() as conn:
            conn.execute(sa.delete(job_queue).where(job_queue.c.kind == "test.chain"))

"""SLA deadline computations per second over the shipped CN-8x5 calendar (holidays and make-up
days of 2024–2026), for issue 5's benchmark "SLA deadline computation per second".

Usage: .venv/bin/python bench/flows_sla.py [--n 200000] [--seed 5] [--writes N [--db URL]]
  D      add_business(cal, t, s): random starts in 2024–2026, targets of the §2.6 table
  B      business_seconds(cal, a, b): random spans of up to 30 days
  step   one full SLA evaluation (policy, three clocks, warn/breach jobs) with advance()
Each is timed warm (the per-day interval cache filled) and, for D and B, also cold (a new
calendar object every 1,000 calls). Prints calls per second and µs per call.
  writes with --writes N: after-sales ticket creates through RecordService with the SLA
         listener (state row, SLA fields in the create's own insert, jobs) against without, in
         alternating batches (wall rate, this process's CPU and statements per create); a
         fresh SQLite file, or --db URL (PostgreSQL: the public schema
         is DROPPED and recreated, so use a scratch database).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this tree's engine

from engine.bundles._yaml import parse_yaml  # noqa: E402
from engine.bundles.limits import DEFAULT_LIMITS  # noqa: E402
from engine.flows.calendar import BusinessCalendar, add_business, business_seconds  # noqa: E402
from engine.flows.calendar_spec import CalendarSpec  # noqa: E402
from engine.flows.sla import CompiledSla, advance  # noqa: E402
from engine.flows.sla_spec import SlaSpec  # noqa: E402

BUNDLE = Path(__file__).resolve().parent.parent / "templates" / "aftersales"
TARGET_MINUTES = (15, 30, 60, 120, 240, 480, 960, 1440, 2400, 2880)


def _load(path: Path) -> Any:
    data, problems = parse_yaml(path.read_text(encoding="utf-8"), DEFAULT_LIMITS)
    if problems:
        raise SystemExit(f"{path}: {problems[0].message}")
    return data


def _calendar() -> BusinessCalendar:
    return BusinessCalendar(CalendarSpec.model_validate(_load(BUNDLE / "calendars/cn_8x5.yaml")))


def _instant(rng: random.Random) -> datetime:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(0, 3 * 365 * 86_400 - 40 * 86_400))


def _time(label: str, n: int, call: Callable[[int], object]) -> None:
    began = time.perf_counter()
    for i in range(n):
        call(i)
    elapsed = time.perf_counter() - began
    print(f"{label:<34} {n / elapsed:>12,.0f} /s {elapsed / n * 1e6:>9.2f} µs/call", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="calls per figure")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--writes", type=int, default=0, help="ticket creates per side")
    parser.add_argument("--db", help="database URL for --writes (default: a SQLite file)")
    args = parser.parse_args()
    if args.writes:
        _writes(args.writes, args.db)
        return
    rng = random.Random(args.seed)
    n = args.n
    starts = [_instant(rng) for _ in range(n)]
    seconds = [rng.choice(TARGET_MINUTES) * 60 for _ in range(n)]
    ends = [s + timedelta(seconds=rng.randrange(0, 30 * 86_400)) for s in starts]
    cal = _calendar()
    for s in starts:  # fill the per-day cache over the whole range first
        add_business(cal, s, 0.5)
    print(f"CN-8x5, {n:,} random calls per figure, Python {sys.version.split()[0]}")
    _time("D add_business (warm)", n, lambda i: add_business(cal, starts[i], seconds[i]))
    _time("B business_seconds (warm)", n, lambda i: business_seconds(cal, starts[i], ends[i]))
    cold: list[BusinessCalendar] = [cal]

    def cold_d(i: int) -> object:
        if i % 1000 == 0:
            cold[0] = _calendar()
        return add_business(cold[0], starts[i], seconds[i])

    def cold_b(i: int) -> object:
        if i % 1000 == 0:
            cold[0] = _calendar()
        return business_seconds(cold[0], starts[i], ends[i])

    small = max(n // 10, 1000)
    _time("D add_business (cold every 1,000)", small, cold_d)
    _time("B business_seconds (cold every 1,000)", small, cold_b)
    sla = CompiledSla(SlaSpec.model_validate(_load(BUNDLE / "slas/ticket.yaml")), "aftersales")
    always = BusinessCalendar(CalendarSpec(key="always", always_open=True))
    calendars = {"cn_8x5": cal, "always": always}
    priorities = ("urgent", "high", "medium", "low")
    records = [
        {"priority": priorities[i % 4], "status": "assigned", "ticket_type": "repair"}
        for i in range(small)
    ]

    def step(i: int) -> object:
        now = starts[i]
        return advance(sla, None, records[i], now=now, started_at=now, calendars=calendars)

    _time("SLA step: create (3 clocks)", small, step)


def _bump(counter: list[int]) -> None:
    counter[0] += 1


class _Side:
    """One side of the write comparison: wall time, this process's CPU time, statements."""

    def __init__(self, label: str, action: Callable[[int], object]) -> None:
        self.label, self.action = label, action
        self.wall = self.cpu = 0.0
        self.statements = 0

    def run(self, indexes: range, statements: list[int]) -> None:
        wall, cpu, before = time.perf_counter(), time.process_time(), statements[0]
        for i in indexes:
            self.action(i)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.statements += statements[0] - before


def _writes(n: int, url: str | None) -> None:
    import tempfile

    import sqlalchemy as sa

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from records_write import _fresh_engine, _rates, _seed

    from engine.bundles import load_bundle
    from engine.flows.sla_service import SlaService, sla_listener
    from engine.forms.events import ChangeListener
    from engine.forms.service import RecordService
    from engine.installer import import_bundle
    from engine.registry import DefinitionRegistry
    from engine.storage.migrate import upgrade_database

    with tempfile.TemporaryDirectory() as tmp:
        engine = _fresh_engine(url, Path(tmp))
        upgrade_database(engine)
        import_bundle(db=engine, bundle=load_bundle(BUNDLE))
        listeners: list[ChangeListener] = []
        registry = DefinitionRegistry()
        with_sla = RecordService(db=engine, registry=registry, listeners=listeners)
        listeners.append(sla_listener(with_sla, registry, service=SlaService(with_sla, registry)))
        without = RecordService(db=engine, registry=DefinitionRegistry())
        payload = _seed(without)

        def create(service: RecordService) -> Callable[[int], object]:
            return lambda i: service.create(
                app="aftersales", form="ticket", data=payload, actor=None
            )

        _rates(min(n, 20), create(with_sla), create(without))  # warm caches and connections
        statements = [0]
        sa.event.listen(engine, "before_cursor_execute", lambda *_: _bump(statements))
        sides = [_Side("with the SLA listener", create(with_sla))]
        sides.append(_Side("without", create(without)))
        for start in range(0, n, 10):  # alternating batches: both see the same machine load
            for side in sides:
                side.run(range(start, min(start + 10, n)), statements)
        print(f"{engine.dialect.name}: ticket creates, {n:,} per side")
        for side in sides:
            print(
                f"{side.label:<34} {n / side.wall:>12,.1f} /s {1000 * side.cpu / n:>8.2f} ms CPU"
                f" {side.statements / n:>6.1f} statements per create"
            )
        sla, plain = sides
        print(f"{'SLA cost per create':<34} {(sla.wall - plain.wall) / n * 1e3:>12.2f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()

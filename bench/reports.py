"""Each after-sales KPI report through the report engine against the hand-written SQL.

Usage: .venv/bin/python bench/reports.py --db URL --rows 1000000 [--repeat 7] [--reuse]

Installs the after-sales bundle on a scratch database (PostgreSQL: the public schema is DROPPED
and recreated; SQLite: a new file, or the path given), loads `--rows` generated tickets
(bench/_report_data.py; COPY on PostgreSQL), runs ANALYZE, then for every KPI of
templates/aftersales/reports times, alternately on one connection:
  engine   run_report: statement built for the request (permission checks of an internal
           caller, filters bound), executed, rows converted
  sql      the same result written by hand (bench/_report_data.hand_sql), rows fetched
and checks that both give the same rows. The period is the whole of 2025 (every ticket).
A ratio above 1.2 or a difference in rows is reported and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _report_data as data  # noqa: E402

from engine.bundles import load_bundle  # noqa: E402
from engine.reports.compiler import compile_report  # noqa: E402
from engine.reports.query import FilterClause  # noqa: E402
from engine.reports.runner import run_report  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402

FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
PERIOD = [FilterClause("created_at", "between", [FIRST.isoformat(), LAST.isoformat()])]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LIMIT = 1.2


def _fresh_engine(url: str) -> sa.Engine:
    engine = create_database_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def _paired(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median ms of `a` and `b`, timed alternately (host load hits both alike)."""
    a()
    b()
    runs: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((a, runs[0]), (b, runs[1])):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs[0]), statistics.median(runs[1])


def _normal(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(_value(v) for v in row) for row in rows]


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | float | int):
        number = float(value)
        return number if number == 0 or math.isnan(number) else float(f"{number:.9g}")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return dt.date.fromisoformat(value)
    return value


def _compare(engine: sa.Engine, repeat: int, only: Sequence[str] = ()) -> bool:
    bundle = load_bundle(data.BUNDLE)
    forms, reports = bundle.definitions["forms"], bundle.definitions["reports"]
    dialect = engine.dialect.name
    params = data.period_params(FIRST, LAST)
    ok = True
    print(f"{'kpi':<24}{'engine ms':>11}{'sql ms':>10}{'ratio':>8}  rows  same")
    with engine.connect() as conn:
        for key in only or data.KPI_KEYS:
            compiled = compile_report(reports[key], app="aftersales", forms=forms, dialect=dialect)
            hand = sa.text(data.hand_sql(key, dialect))

            def by_engine(compiled: Any = compiled, key: str = key) -> Any:
                period = [] if key in data.UNDATED else PERIOD
                return run_report(conn, compiled, actor=None, now=NOW, extra_filters=period).rows

            def by_hand(hand: Any = hand) -> Any:
                return conn.execute(hand, params).all()

            same = _normal(by_engine()) == _normal(by_hand())
            engine_ms, sql_ms = _paired(by_engine, by_hand, repeat)
            ratio = engine_ms / sql_ms
            ok = ok and same and ratio <= LIMIT
            flag = "" if ratio <= LIMIT else "  OVER"
            print(f"{key:<24}{engine_ms:>11.1f}{sql_ms:>10.1f}{ratio:>8.2f}"
                  f"{len(by_hand()):>6}  {'yes' if same else 'NO'}{flag}")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    parser.add_argument("--kpi", default="", help="comma-separated report keys (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_database_engine(url) if args.reuse else _fresh_engine(url)
        print(
            f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
            f"{platform.python_version()}, {engine.dialect.name}, {args.rows} tickets"
        )
        if not args.reuse:
            started = time.perf_counter()
            upgrade_database(engine)
            data.install(engine)
            data.load(engine, args.rows)
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            print(f"load    {args.rows:>9} tickets: {time.perf_counter() - started:8.1f} s")
        ok = _compare(engine, args.repeat, [k for k in args.kpi.split(",") if k])
        engine.dispose()
    print("all within 1.2x and identical" if ok else "SOME KPI OVER 1.2x OR DIFFERENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Each after-sales KPI report through the report engine against the hand-written SQL.

Usage: .venv/bin/python bench/reports.py --db URL --rows 1000000 [--repeat 7] [--reuse]

Installs the after-sales bundle on a scratch database (PostgreSQL: the public schema is DROPPED
and recreated; SQLite: a new file, or the path given), loads `--rows` generated tickets
(bench/_report_data.py; COPY on PostgreSQL), their visits and activity (_report_data_field.py),
surveys (_report_data_survey.py) and the parts, PM and product rows (_report_data_ops.py),
runs (VACUUM) ANALYZE, then for every report of templates/aftersales/reports that has hand SQL
times, alternately on one connection (PostgreSQL: jit off for both, as the report service):
  engine   run_report: statement built for the request (permission checks of an internal
           caller, filters bound), executed, rows converted
  sql      the same result written by hand (bench/_report_data*.py), rows fetched
and checks that both give the same rows. The period is the whole of 2025, on each report's
event date (created_at, check_out_at, responded_at, …); reports of the present have none.
A ratio above 1.2 or a difference in rows is reported and makes the exit status 1; reports
without hand SQL are listed at the end.
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
import _report_data_all as families  # noqa: E402

from engine.errors import DefinitionError  # noqa: E402
from engine.reports.compiler import compile_report  # noqa: E402
from engine.reports.query import FilterClause  # noqa: E402
from engine.reports.runner import run_report  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402

FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
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


def _compare(engine: sa.Engine, bundle: Any, repeat: int, only: Sequence[str] = ()) -> bool:
    definitions: Any = bundle.definitions  # form and report specs by key
    forms, reports = definitions["forms"], definitions["reports"]
    dialect = engine.dialect.name
    queries = families.hand_queries(dialect)
    params = {**data.period_params(FIRST, LAST), "first": FIRST, "last": LAST, "now": NOW}
    period = [FIRST.isoformat(), LAST.isoformat()]
    ok = True
    print(f"{'kpi':<24}{'engine ms':>11}{'sql ms':>10}{'ratio':>8}  rows  same")
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql("SET jit = off")
        for key in only or sorted(k for k in reports if k in queries):
            if key not in queries or key not in reports:
                print(f"{key:<24}no such report or no hand SQL")
                ok = False
                continue
            event, sql = queries[key]
            try:
                compiled = compile_report(reports[key], app="aftersales", forms=forms,
                                          dialect=dialect)  # fmt: skip
            except DefinitionError as err:
                print(f"{key:<24}does not compile: {err}")
                ok = False
                continue
            extra = [FilterClause(event, "between", period)] if event else []
            hand = sa.text(sql)

            def by_engine(compiled: Any = compiled, extra: Any = extra) -> Any:
                return run_report(conn, compiled, actor=None, now=NOW, extra_filters=extra).rows

            def by_hand(hand: Any = hand) -> Any:
                return conn.execute(hand, params).all()

            expected = _normal(by_hand())
            same = _normal(by_engine()) == expected
            engine_ms, sql_ms = _paired(by_engine, by_hand, repeat)
            ratio = engine_ms / sql_ms
            ok = ok and same and ratio <= LIMIT
            flag = "" if ratio <= LIMIT else "  OVER"
            print(f"{key:<24}{engine_ms:>11.1f}{sql_ms:>10.1f}{ratio:>8.2f}"
                  f"{len(expected):>6}  {'yes' if same else 'NO'}{flag}", flush=True)  # fmt: skip
    missing = sorted(k for k in reports if k not in queries)
    print(f"no hand SQL ({len(missing)}): {', '.join(missing) or '-'}")
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
        bundle = families.read_bundle()
        if not args.reuse:
            families.load_all(engine, bundle, args.rows)
        ok = _compare(engine, bundle, args.repeat, [k for k in args.kpi.split(",") if k])
        engine.dispose()
    print("all within 1.2x and identical" if ok else "SOME KPI OVER 1.2x OR DIFFERENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Expression benchmark: Python evaluations per second, then compiled SQL against hand-written SQL.

Run: `.venv/bin/python bench/expr.py [--db postgresql+psycopg://...] [--rows 100000]`.
Prints figures only; nothing is asserted. SQLite always runs (in a temporary file); PostgreSQL
runs when a URL is given, in a temporary table that disappears with the connection.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.expr import ExprType, check, compile_filter, compile_sql, evaluate, parse  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
SLA = 'IF(priority = "urgent", DATEADD(created_at, 4, "hour"), DATEADD(created_at, 24, "hour"))'
STATUS = (
    'IFS(DATEDIF(created_at, $now, "hour") >= 48, "breached", '
    'DATEDIF(created_at, $now, "hour") >= 24, "warning", TRUE, "ok")'
)
VISIBLE = 'ticket_type in ("repair", "tech_support") AND product_line = "controller"'
CATALOG = {
    "priority": ExprType.TEXT,
    "created_at": ExprType.DATETIME,
    "ticket_type": ExprType.TEXT,
    "product_line": ExprType.TEXT,
}

# Hand-written equivalents, as a developer would write them for each backend.
HAND = {
    "sqlite": {
        SLA: "max(CASE WHEN priority = 'urgent' "
        "THEN strftime('%Y-%m-%d %H:%M:%S', created_at, '+4 hours') "
        "ELSE strftime('%Y-%m-%d %H:%M:%S', created_at, '+24 hours') END "
        "|| substr(created_at, 20))",
        STATUS: "CASE WHEN (strftime('%s', :now) - strftime('%s', created_at)) / 3600 >= 48 "
        "THEN 'breached' WHEN (strftime('%s', :now) - strftime('%s', created_at)) / 3600 >= 24 "
        "THEN 'warning' ELSE 'ok' END",
    },
    "postgresql": {
        SLA: "max(CASE WHEN priority = 'urgent' THEN created_at + interval '4 hours' "
        "ELSE created_at + interval '24 hours' END)",
        STATUS: "CASE WHEN :now - created_at >= interval '48 hours' THEN 'breached' "
        "WHEN :now - created_at >= interval '24 hours' THEN 'warning' ELSE 'ok' END",
    },
}
HAND_VISIBLE = "ticket_type IN ('repair', 'tech_support') AND product_line = 'controller'"


def make_rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    start = NOW - timedelta(days=5)
    return [
        {
            "id": i,
            "priority": rng.choice(["urgent", "high", "normal", None]),
            "ticket_type": rng.choice(["repair", "tech_support", "return", "consult"]),
            "product_line": rng.choice(["controller", "motor", "sensor", None]),
            "created_at": start + timedelta(seconds=rng.randrange(0, 5 * 86_400)),
        }
        for i in range(1, count + 1)
    ]


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_python(rows: list[dict[str, Any]]) -> None:
    print("Python evaluator")
    sample = rows[:20_000]
    parse("1")  # loads the grammar once, outside the timings
    for name, text in (("SLA deadline", SLA), ("SLA status", STATUS), ("visibility", VISIBLE)):
        started = time.perf_counter()
        for _ in range(200):
            expr = parse(text)
            check(expr, CATALOG)
        compile_ms = (time.perf_counter() - started) / 200 * 1000
        expr = parse(text)
        seconds, _ = best_of(3, lambda e=expr: [evaluate(e, row, now=NOW) for row in sample])
        rate = len(sample) / seconds
        print(f"  {name:<13} {rate:>10,.0f} evals/s   parse+check {compile_ms:.2f} ms")


def bench_sql(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_database_engine(url)
    dialect = engine.dialect.name
    print(f"SQL on {dialect} over {len(rows):,} rows (best of 3)")
    table = sa.Table(
        "bench_expr",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("priority", sa.Text),
        sa.Column("ticket_type", sa.Text),
        sa.Column("product_line", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        prefixes=["TEMPORARY"],
    )
    with engine.connect() as conn:
        table.metadata.create_all(conn)
        conn.execute(table.insert(), rows)
        conn.commit()
        columns = {c.name: c for c in table.columns}
        now_param = NOW.replace(tzinfo=None) if dialect == "sqlite" else NOW
        compiled = {
            text: compile_sql(parse(text), columns, dialect=dialect, now=NOW)
            for text in (SLA, STATUS, VISIBLE)
        }
        status = compiled[STATUS].label("s")
        visible = compile_filter(parse(VISIBLE), columns, dialect=dialect, now=NOW)
        queries = {
            "SLA deadline": (
                sa.select(sa.func.max(compiled[SLA])).select_from(table),
                sa.text(f"SELECT {HAND[dialect][SLA]} FROM bench_expr"),
            ),
            "SLA status": (
                sa.select(status, sa.func.count()).group_by(sa.literal_column("s")),
                sa.text(
                    f"SELECT {HAND[dialect][STATUS]} AS s, count(*) FROM bench_expr GROUP BY s"
                ).bindparams(now=now_param),
            ),
            "visibility": (
                sa.select(sa.func.count()).select_from(table).where(visible),
                sa.text(f"SELECT count(*) FROM bench_expr WHERE {HAND_VISIBLE}"),
            ),
        }
        for name, (ours, hand) in queries.items():
            ours_s, ours_rows = best_of(3, lambda q=ours: conn.execute(q).all())
            hand_s, hand_rows = best_of(3, lambda q=hand: conn.execute(q).all())
            same = _same(ours_rows, hand_rows)
            print(
                f"  {name:<13} compiled {ours_s * 1000:8.1f} ms   hand-written "
                f"{hand_s * 1000:8.1f} ms   ratio {ours_s / hand_s:5.2f}   same result: {same}"
            )
    engine.dispose()


def _same(a: list[Any], b: list[Any]) -> bool:
    def norm(value: Any) -> Any:
        # SQLite hands back naive UTC (parsed or as text), PostgreSQL aware datetimes.
        if isinstance(value, str) and len(value) >= 19 and value[10] == " ":
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def key(rows: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((tuple(norm(v) for v in row) for row in rows), key=repr)

    return key(a) == key(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="a PostgreSQL URL to benchmark as well")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    bench_python(rows)
    with tempfile.TemporaryDirectory() as folder:
        bench_sql(f"sqlite:///{folder}/bench.db", rows)
    if args.db:
        bench_sql(args.db, rows)


if __name__ == "__main__":
    main()

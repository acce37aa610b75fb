"""A filtered, sorted page of 25 tickets: the list engine against hand-written SQL, and the API.

Usage: .venv/bin/python bench/records_list.py --db URL --rows 1000000 [--repeat 200]

Installs the after-sales bundle on a scratch database (PostgreSQL: the public schema is DROPPED
and recreated; SQLite: a new file, or the path given), bulk-loads `--rows` tickets with
realistic distributions (COPY on PostgreSQL), creates the indexes a deployment would, then times:
  engine   build_list_query + fetch_page (first page and a later page through the cursor)
  sql      the same pages as hand-written SQL through the same driver, rows as dicts
  count    count_records for the same filter (exact or estimated)
  api      GET /api/v1/apps/aftersales/forms/ticket/records through uvicorn over HTTP
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _auth import admin_headers  # bench/ is on sys.path when run as a script
from _load import copy_rows, insert_rows, ticket_target  # bench/ is on sys.path as a script

from engine.bundles import load_bundle
from engine.forms.listing import build_list_query
from engine.installer import import_bundle
from engine.storage._fts import ensure_search_index
from engine.storage.database import create_database_engine
from engine.storage.form_queries import count_records, fetch_page
from engine.storage.migrate import upgrade_database

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "templates" / "aftersales"
TABLE = "aftersales__ticket"
STATUSES = {
    "closed": 58, "resolved": 10, "in_progress": 8, "assigned": 6, "new": 4,
    "waiting_customer": 6, "waiting_parts": 3, "onsite": 2, "cancelled": 3,
}  # fmt: skip
PRIORITIES = {"low": 30, "medium": 45, "high": 20, "urgent": 5}
TYPES = {"repair": 40, "tech_support": 25, "consultation": 15, "installation": 8, "pm": 5,
         "return_exchange": 3, "complaint": 2, "feedback": 1, "recall": 1}  # fmt: skip
CHANNELS = {"phone": 35, "web": 15, "app": 15, "wechat": 25, "qr": 5, "email": 5}
PROVINCES = ["广东省", "江苏省", "浙江省", "山东省", "北京市", "上海市", "四川省", "湖北省"]
SUBJECTS = ["打印机卡纸", "控制器报错 E07", "设备无法开机", "显示屏闪烁", "固件升级失败",
            "Noise from the fan", "Error code F01 after update", "安装预约", "保养巡检",
            "备件咨询", "Paper jam in tray 2", "网络连接中断"]  # fmt: skip
COLUMNS = ["number", "subject", "description", "channel", "ticket_type", "customer", "priority",
           "status", "team", "site_address__province", "escalation_level", "created_at",
           "updated_at", "version"]  # fmt: skip
FILTER = {
    "and": [
        {"field": "status", "op": "in", "value": ["new", "assigned", "in_progress"]},
        {"field": "priority", "op": "in", "value": ["urgent", "high"]},
    ]
}
SORT = ["-created_at"]
HAND_WRITTEN = (
    f"SELECT * FROM {TABLE} WHERE deleted_at IS NULL AND status IN (:s1, :s2, :s3) "
    "AND priority IN (:p1, :p2) {after} ORDER BY created_at DESC, id DESC LIMIT 26"
)
HAND_PARAMS = {"s1": "new", "s2": "assigned", "s3": "in_progress", "p1": "urgent", "p2": "high"}
# What a deployment adds for this list: the sort key (the form declares status/priority).
EXTRA_INDEXES = [f"CREATE INDEX IF NOT EXISTS ix_bench_ticket_created ON {TABLE} (created_at, id)"]


def _weighted(table: dict[str, int], n: int, rng: random.Random) -> list[str]:
    return rng.choices(list(table), weights=list(table.values()), k=n)


def _rows(count: int, customers: int, teams: int, seed: int = 7) -> Iterator[list[Any]]:
    rng = random.Random(seed)
    start = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    span = 2 * 365 * 86400
    chunk = 10_000
    for offset in range(0, count, chunk):
        n = min(chunk, count - offset)
        statuses = _weighted(STATUSES, n, rng)
        priorities = _weighted(PRIORITIES, n, rng)
        types = _weighted(TYPES, n, rng)
        channels = _weighted(CHANNELS, n, rng)
        for i in range(n):
            serial = offset + i
            # newer tickets are more common (growth), and ids follow creation order
            created = start + dt.timedelta(seconds=int(span * (serial / count) ** 0.8))
            subject = rng.choice(SUBJECTS)
            yield [
                f"WO-{created:%Y%m}-{serial:07d}", f"{subject} #{serial}",
                f"{subject}：客户反馈 {rng.choice(PROVINCES)} 现场设备问题，序列号 SN{serial:08d}",
                channels[i], types[i], rng.randint(1, customers), priorities[i], statuses[i],
                rng.randint(1, teams), rng.choice(PROVINCES), 0, created, created, 1,
            ]  # fmt: skip


def _load(engine: sa.Engine, rows: int) -> None:
    customers, teams = 5000, 20
    now = dt.datetime.now(dt.UTC)
    meta = sa.MetaData()
    with engine.begin() as conn:
        customer = sa.Table("aftersales__customer", meta, autoload_with=conn)
        team = sa.Table("aftersales__team", meta, autoload_with=conn)
        conn.execute(customer.insert(), [{"created_at": now, "updated_at": now}] * customers)
        conn.execute(team.insert(), [{"created_at": now, "updated_at": now}] * teams)
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        copy_rows(engine, TABLE, COLUMNS, _rows(rows, customers, teams))
    else:
        insert_rows(engine, TABLE, COLUMNS, _rows(rows, customers, teams))
    print(f"load    {rows:>9} tickets: {time.perf_counter() - started:8.1f} s")


def _indexes(engine: sa.Engine, target: Any, search: bool) -> None:
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in EXTRA_INDEXES:
            conn.exec_driver_sql(statement)
        if search:
            ensure_search_index(conn, form=target.form.spec, tables=target.tables)
        conn.exec_driver_sql("ANALYZE")
    print(f"index   extra + search + ANALYZE: {time.perf_counter() - started:8.1f} s")


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    runs.sort()
    return statistics.median(runs), runs[int(len(runs) * 0.95) - 1]


def _paired(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[Any, Any]:
    """Time `a` and `b` alternately (the host is shared: load changes hit both alike)."""
    for _ in range(5):
        a()
        b()
    runs: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((a, runs[0]), (b, runs[1])):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
    return tuple((statistics.median(r), sorted(r)[int(len(r) * 0.95) - 1]) for r in runs)  # type: ignore[return-value]


def _report(label: str, median: float, p95: float, base: float | None = None) -> None:
    ratio = f"  ratio {median / base:5.2f}x" if base else ""
    print(f"{label:<28} median {median:7.2f} ms  p95 {p95:7.2f} ms{ratio}")


def _compare(engine: sa.Engine, target: Any, repeat: int) -> str:
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:

        def engine_page(cursor: str | None = None) -> Any:
            query = build_list_query(target.form, forms=target.forms, filter=FILTER, sort=SORT,
                                     limit=25, cursor=cursor)  # fmt: skip
            return fetch_page(conn, target=target, query=query, now=now)

        def sql_page(after: tuple[Any, int] | None = None) -> Any:
            clause = "AND (created_at < :c OR (created_at = :c AND id < :i))" if after else ""
            params = dict(HAND_PARAMS, **({"c": after[0], "i": after[1]} if after else {}))
            statement = sa.text(HAND_WRITTEN.replace("{after}", clause))
            result = conn.execute(statement, params)
            names = list(result.keys())
            return [dict(zip(names, row, strict=True)) for row in result]

        first = engine_page()
        assert [r["id"] for r in first.items] == [r["id"] for r in sql_page()][:25]
        cursor = first.next_cursor
        for _ in range(3):
            cursor = engine_page(cursor).next_cursor
        later = engine_page(cursor)
        last = later.items[0]
        previous = engine_page(None)  # noqa: F841  (warm)
        sql_first, engine_first = _paired(sql_page, engine_page, repeat)
        _report("sql    first page", *sql_first)
        _report("engine first page", *engine_first, base=sql_first[0])
        anchor = _anchor(conn, later.items[0]["id"])
        sql_later, engine_later = _paired(
            lambda: sql_page(anchor), lambda: engine_page(cursor), repeat
        )
        _report("sql    page 5 (keyset)", *sql_later)
        _report("engine page 5 (cursor)", *engine_later, base=sql_later[0])
        del last
        query = build_list_query(target.form, forms=target.forms, filter=FILTER)
        counted = count_records(conn, target=target, query=query, now=now)
        count_time = _timed(lambda: count_records(conn, target=target, query=query, now=now), 20)
        print(f"count  {counted.value} exact={counted.exact}: median {count_time[0]:.2f} ms")
        search = build_list_query(target.form, forms=target.forms, search="SN00012345")
        found = fetch_page(conn, target=target, query=search, now=now)
        search_time = _timed(lambda: fetch_page(conn, target=target, query=search, now=now), 20)
        print(f"search 'SN00012345' ({len(found.items)} hit): median {search_time[0]:.2f} ms")
        chinese = build_list_query(target.form, forms=target.forms, search="固件升级", limit=25)
        chinese_time = _timed(lambda: fetch_page(conn, target=target, query=chinese, now=now), 20)
        print(f"search '固件升级' (page of 25): median {chinese_time[0]:.2f} ms")
    return str(cursor)


def _anchor(conn: sa.Connection, record_id: int) -> tuple[Any, int]:
    """The (created_at, id) keyset position just before `record_id` (same page as the cursor)."""
    row = conn.execute(
        sa.text(f"SELECT created_at, id FROM {TABLE} WHERE id > :i AND deleted_at IS NULL AND "
                "status IN (:s1, :s2, :s3) AND priority IN (:p1, :p2) "
                "ORDER BY created_at, id LIMIT 1"), dict(HAND_PARAMS, i=record_id)
    ).one()  # fmt: skip
    return row[0], row[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _api(url: str, data_dir: Path, repeat: int) -> None:
    port = _free_port()
    env = dict(os.environ, TANGRAM_DATABASE_URL=url, TANGRAM_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30, headers=admin_headers(url)) as client:
            for _ in range(600):  # the import takes seconds on a loaded host
                try:
                    client.get("/api/v1/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            import json

            params = {"filter": json.dumps(FILTER), "sort": ",".join(SORT), "limit": 25}
            path = "/api/v1/apps/aftersales/forms/ticket/records"
            response = client.get(path, params=params)
            response.raise_for_status()
            _report("api    page (with count)", *_timed(lambda: client.get(path, params=params),
                                                        repeat))  # fmt: skip
            bare = dict(params, count="false")
            no_count = _timed(lambda: client.get(path, params=bare), repeat)
            _report("api    page (no count)", *no_count)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _fresh_engine(url: str) -> sa.Engine:
    engine = create_database_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--no-search", action="store_true", help="skip the search indexes")
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    parser.add_argument("--api-only", action="store_true", help="with --reuse: only the API")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_database_engine(url) if args.reuse else _fresh_engine(url)
        print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
              f"{platform.python_version()}, {engine.dialect.name}, {args.rows} rows")  # fmt: skip
        if not args.reuse:
            upgrade_database(engine)
            import_bundle(db=engine, bundle=load_bundle(BUNDLE))
            _load(engine, args.rows)
        target = ticket_target(engine, BUNDLE)
        _indexes(engine, target, not args.no_search)
        if not args.api_only:
            _compare(engine, target, args.repeat)
        engine.dispose()
        if not args.no_api:
            _api(url, Path(tmp), args.repeat)


if __name__ == "__main__":
    main()

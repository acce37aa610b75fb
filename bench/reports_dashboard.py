"""The after-sales cockpit: every widget cold and cached, and peak memory while exporting.

    python bench/reports_dashboard.py --db URL --rows N [--period year,default]
        [--export 100000,1000000]

Loads N generated tickets (bench/_report_data.py) unless the database has them, then times
the whole cockpit (all widgets, run concurrently) three ways: cold (new process state: forms
and reports compiled, nothing cached), compiled but uncached, and cached. Each export runs in
a child process that only streams a detail report to CSV, so its peak RSS (ru_maxrss) is the
export's own; flat memory means the 100k and 1M figures are close.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.identity.actor import Actor  # noqa: E402
from engine.registry import DefinitionRegistry  # noqa: E402
from engine.reports.dashboard_service import DashboardService  # noqa: E402
from engine.reports.export import export_compiled  # noqa: E402
from engine.reports.service import ReportService  # noqa: E402
from engine.reports.spec import ReportSpec  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402

ADMIN = Actor(user_id=0, username="bench", is_admin=True)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = {"period": ["2025-01-01", "2025-12-31"]}
PERIODS: dict[str, dict[str, Any]] = {"year": YEAR, "default": {}}  # default: last 30 days
DETAIL = {
    "key": "ticket_detail",
    "label": "Tickets",
    "dataset": {"form": "ticket"},
    "dimensions": [
        {"key": k, "field": k}
        for k in (
            "number",
            "channel",
            "ticket_type",
            "region",
            "priority",
            "status",
            "created_at",
            "first_response_at",
            "frt_bsec",
            "reopen_count",
        )
    ],  # fmt: skip
}


def ensure_data(engine: sa.Engine, rows: int) -> int:
    import _report_data  # type: ignore[import-not-found]

    from engine.storage.migrate import upgrade_database

    upgrade_database(engine)
    _report_data.install(engine)
    with engine.connect() as conn:
        count = int(
            conn.execute(sa.text(f"SELECT count(*) FROM {_report_data.TICKET}")).scalar_one()
        )
    if count == 0:
        started = time.perf_counter()
        _report_data.load(engine, rows)
        print(f"loaded {rows:,} tickets in {time.perf_counter() - started:.1f} s")
        return rows
    return count


def timed_cockpit(service: DashboardService, values: dict[str, Any]) -> tuple[float, int, int]:
    started = time.perf_counter()
    payload = service.run(app="aftersales", key="cockpit", actor=ADMIN, values=values)
    elapsed = time.perf_counter() - started
    widgets = payload["widgets"]
    cached = sum(1 for w in widgets if w.get("cached"))
    failed = [w["key"] for w in widgets if "error" in w]
    if failed:
        print(f"  widgets with errors: {failed}")
    return elapsed, len(widgets), cached


def time_cockpit(engine: sa.Engine, period: str) -> None:
    values = PERIODS[period]
    print(f"period: {period} ({values.get('period', 'the dashboard default, last 30 days')})")
    runs = ReportService(engine, registry=DefinitionRegistry(), clock=lambda: NOW)
    service = DashboardService(runs)
    elapsed, count, _ = timed_cockpit(service, values)
    print(f"cockpit cold (compile + run): {count} widgets in {elapsed * 1000:.0f} ms")
    runs.cache.clear()
    elapsed, count, _ = timed_cockpit(service, values)
    print(f"cockpit compiled, not cached: {count} widgets in {elapsed * 1000:.0f} ms")
    best = min(timed_cockpit(service, values)[0] for _ in range(5))
    _, _, cached = timed_cockpit(service, values)
    print(f"cockpit cached: {cached}/{count} widgets from cache, best of 5 {best * 1000:.1f} ms")


def export_child(url: str, limit: int) -> None:
    """Stream the detail report (first `limit` rows) to CSV, print bytes and peak RSS."""
    engine = create_database_engine(url)
    runs = ReportService(engine, registry=DefinitionRegistry(), clock=lambda: NOW)
    spec = ReportSpec.model_validate({**DETAIL, "limit": min(limit, 100_000)})
    with runs.unit() as uow:
        compiled = runs.compile(uow, app="aftersales", spec=spec)
    if limit > 100_000:  # the spec caps limits at 100,000; a detail export has none
        with runs.unit() as uow:
            compiled = runs.compile(
                uow, app="aftersales", spec=spec.model_copy(update={"limit": None})
            )
    started = time.perf_counter()
    size = rows = 0
    for chunk in export_compiled(runs, compiled, actor=ADMIN, file_format="csv").chunks:
        size += len(chunk)
        rows += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    print(f"{rows - 1} {size} {elapsed:.2f} {peak_rss_mib():.1f}")


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: after fork and exec,
    ru_maxrss keeps the parent's peak, which would hide the export's own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="database URL")
    parser.add_argument("--rows", type=int, default=100_000, help="tickets to generate")
    parser.add_argument("--export", default="100000,1000000", help="export sizes (rows)")
    parser.add_argument("--no-cockpit", action="store_true", help="only the exports")
    parser.add_argument("--period", default="year,default", help="cockpit periods: year,default")
    parser.add_argument("--export-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.db, args.export_child)
        return
    engine = create_database_engine(args.db)
    tickets = ensure_data(engine, args.rows)
    print(f"database {engine.dialect.name}, {tickets:,} tickets")
    if not args.no_cockpit:
        for period in (p for p in args.period.split(",") if p):
            time_cockpit(engine, period)
    for size in (int(s) for s in args.export.split(",") if s):
        if size > tickets:
            print(f"export {size:,}: skipped (only {tickets:,} tickets)")
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--db", args.db, "--export-child", str(size)],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        rows, size_b, seconds, peak = out[-4:]
        print(f"export CSV {int(rows):,} rows, {int(size_b) / 2**20:.0f} MiB in {seconds} s, "
              f"peak RSS {peak} MiB")  # fmt: skip


if __name__ == "__main__":
    main()

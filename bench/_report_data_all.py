"""Every generated data family and every hand-written report, for bench/reports.py: load them
all into one database, and gather each report's hand SQL with the event date its period binds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import _report_data as data  # bench/ is on sys.path
import _report_data_field as field
import _report_data_field_sql as field_sql
import _report_data_now as now_sql
import _report_data_ops as ops
import _report_data_survey as survey
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import DefinitionError
from engine.storage.migrate import upgrade_database


def hand_queries(dialect: str) -> dict[str, tuple[str | None, str]]:
    """Report key → (the event date its period binds, or None; the hand SQL)."""
    out: dict[str, tuple[str | None, str]] = {
        key: (None if key in data.UNDATED else "created_at", data.hand_sql(key, dialect))
        for key in data.KPI_KEYS
    }
    out |= field_sql.bench_sql(dialect) | survey.HAND_SQL | ops.bench_sql(dialect)
    return out | now_sql.bench_sql(dialect)


def load_all(engine: sa.Engine, bundle: Any, tickets: int) -> None:
    """The bundle, then every generated family, then (VACUUM) ANALYZE; prints each step."""
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("bundle", lambda: _install(engine, bundle)),
        ("tickets", lambda: data.load(engine, tickets)),
        ("field", lambda: field.load_field(engine)),
        ("surveys", lambda: survey.load_surveys(engine)),
        ("ops", lambda: ops.load_ops(engine, tickets)),
        ("analyze", lambda: _analyze(engine)),
    ]  # fmt: skip
    total = time.perf_counter()
    for name, step in steps:
        started = time.perf_counter()
        step()
        print(f"load {name:<8} {time.perf_counter() - started:8.1f} s", flush=True)
    print(f"load    {tickets:>9} tickets: {time.perf_counter() - total:8.1f} s", flush=True)


def _install(engine: sa.Engine, bundle: Any) -> None:
    upgrade_database(engine)
    data.install(engine, bundle)


def read_bundle() -> Any:
    """The bundle as it is now, read once: other sessions may be editing the working tree
    (a half-edited definition fails to load: wait for the edit to end)."""
    for _ in range(20):
        try:
            return load_bundle(data.BUNDLE)
        except DefinitionError as err:
            print(f"bundle does not load ({err}); retrying in 30 s", flush=True)
            time.sleep(30)
    return load_bundle(data.BUNDLE)


def _analyze(engine: sa.Engine) -> None:
    """PostgreSQL: VACUUM too (the field step updates every ticket, leaving dead rows)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


__all__ = ["hand_queries", "load_all", "read_bundle"]

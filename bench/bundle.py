"""Times `check` and `import` of the after-sales bundle (and a second, no-op import).

Usage: .venv/bin/python bench/bundle.py [--db URL] [--repeat N]
Without --db it uses a fresh SQLite file; with a PostgreSQL URL it DROPs and recreates the
public schema first, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from engine.bundles import check_bundle, load_bundle
from engine.installer import import_bundle
from engine.storage.database import create_database_engine
from engine.storage.migrate import upgrade_database

BUNDLE = Path(__file__).resolve().parent.parent / "templates" / "aftersales"


def _timed(fn: object, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _fresh_engine(url: str | None, tmp: Path) -> sa.Engine:
    if url is None:
        return create_database_engine(f"sqlite:///{tmp / 'bench.db'}")
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.python_implementation()} "
          f"{platform.python_version()}")
    check_s = _timed(lambda: check_bundle(BUNDLE), args.repeat)
    report = check_bundle(BUNDLE)
    print(f"check   {BUNDLE.name}: {check_s * 1000:8.1f} ms median of {args.repeat}  "
          f"({report.total} definitions)")
    with tempfile.TemporaryDirectory() as tmp:
        engine = _fresh_engine(args.db, Path(tmp))
        upgrade_database(engine)
        bundle = load_bundle(BUNDLE)
        started = time.perf_counter()
        plan = import_bundle(db=engine, bundle=bundle)
        first = time.perf_counter() - started
        again = _timed(lambda: import_bundle(db=engine, bundle=bundle), args.repeat)
        noop = import_bundle(db=engine, bundle=bundle).is_noop
        print(f"import  {BUNDLE.name} on {engine.dialect.name}: first {first * 1000:8.1f} ms "
              f"({len(plan.items)} plan items); repeated (no-op={noop}) "
              f"{again * 1000:8.1f} ms median of {args.repeat}")
        engine.dispose()


if __name__ == "__main__":
    main()

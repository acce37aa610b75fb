"""Import of N CSV rows into the after-sales ticket form vs a bare `executemany` of the same rows.

Usage: .venv/bin/python bench/records_import.py [--db URL] [--rows 100000] [--batch 500]

The import goes through everything an API create does (lenient coercion, validate_submission,
FormRecordStore with autonumbers, history) in `all_or_nothing` mode. The bare run inserts the
clean column values the import stored, in one transaction. Peak RSS is measured in a child
process per size (10,000 rows, then --rows), so the figures are not polluted by each other.
Without --db a fresh SQLite file is used; a PostgreSQL URL gets its public schema recreated.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bundles import load_bundle  # noqa: E402
from engine.forms.transfer_service import ImportOptions, TransferService  # noqa: E402
from engine.installer import import_bundle  # noqa: E402
from engine.registry import DefinitionRegistry  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402

BUNDLE = ROOT / "templates" / "aftersales"
HEADER = "Subject,Description,Channel,Type,Customer,Contact,Priority,Status\n"
TYPES = ("consultation", "complaint", "feedback")
PRIORITIES = ("low", "medium", "high")


def _fresh_engine(url: str | None, tmp: Path) -> sa.Engine:
    if url is None:
        return create_database_engine(f"sqlite:///{tmp / 'bench.db'}")
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def _import(service: TransferService, form: str, text: str | Path, batch: int) -> Any:
    upload = text.open("rb") if isinstance(text, Path) else io.BytesIO(text.encode())
    with upload:
        return _import_stream(service, form, upload)


def _import_stream(service: TransferService, form: str, upload: Any) -> Any:
    return service.import_file(
        app="aftersales",
        form=form,
        upload=upload,
        file_name=f"{form}.csv",
        options=ImportOptions(mode="all_or_nothing"),
        actor=None,
    )


def _seed(service: TransferService) -> None:
    customer = 'Code,Name,Type,Address\nC001,Acme,company,"{""province"":""上海市""}"\n'
    contact = "Name,Customer,Mobile\nLi Lei,Acme,13800000000\n"
    for form, text in (("customer", customer), ("contact", contact)):
        job = _import(service, form, text, 500)
        if job.status != "done":
            raise SystemExit(f"seeding {form} failed: {job.problems} {job.rows_failed}")


def _tickets_csv(rows: int, path: Path) -> Path:
    """The CSV on disk, so that the import's memory is not hidden behind the file's."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            out.write(
                f"Ticket {i},Printer {i} does not start,phone,{TYPES[i % 3]},Acme,Li Lei,"
                f"{PRIORITIES[i % 3]},new\n"
            )
    return path


def _ticket_table(engine: sa.Engine) -> sa.Table:
    return sa.Table("aftersales__ticket", sa.MetaData(), autoload_with=engine)


def _bare(engine: sa.Engine, rows: list[dict[str, Any]]) -> float:
    """The same rows through one executemany, in one transaction."""
    table = _ticket_table(engine)
    with engine.begin() as conn:
        conn.execute(table.delete())
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return time.perf_counter() - started


def _stored_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    table = _ticket_table(engine)
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).order_by(table.c.id))
        rows = [dict(row._mapping) for row in result]
    for row in rows:
        row.pop("id")
    return rows


def run_child(url: str | None, rows: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = _fresh_engine(url, Path(tmp))
        upgrade_database(engine)
        import_bundle(db=engine, bundle=load_bundle(BUNDLE))
        service = TransferService(
            db=engine, registry=DefinitionRegistry(), data_dir=Path(tmp), batch_size=batch
        )
        _seed(service)
        source = _tickets_csv(rows, Path(tmp) / "tickets.csv")
        started = time.perf_counter()
        job = _import(service, "ticket", source, batch)
        import_s = time.perf_counter() - started
        if job.status != "done":
            raise SystemExit(f"import failed: {job.problems} failed rows: {job.rows_failed}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        bare_s = _bare(engine, _stored_rows(engine))
        engine.dispose()
    return {"rows": rows, "import_s": import_s, "bare_s": bare_s, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.db, args.rows, args.batch)))
        return
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}  db: {args.db or 'sqlite (temp file)'}"
    )
    for rows in sorted({min(10_000, args.rows), args.rows}):
        command = [sys.executable, __file__, "--child", "--rows", str(rows)]
        command += ["--batch", str(args.batch)] + (["--db", args.db] if args.db else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        ratio = result["bare_s"] / result["import_s"]
        print(
            f"{rows:>7} rows  import {result['import_s']:7.2f} s "
            f"({rows / result['import_s']:8.0f} rows/s)  bare executemany "
            f"{result['bare_s']:6.2f} s ({rows / result['bare_s']:8.0f} rows/s)  "
            f"ratio {ratio:6.1%} (target >= 30%)  peak RSS {result['peak_rss_mb']:6.1f} MB"
        )


if __name__ == "__main__":
    main()

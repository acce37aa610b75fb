"""Clean-up of stored uploads no record refers to any more (`tangram files gc`).

A stored file (a `stored_files` row) is garbage when it is older than the grace period and no
JSON value of any table names its id: record fields (live and soft-deleted records, subform
rows, retired fields whose columns are still there) and whatever else other engines keep as
JSON. Record history and the audit log are not looked at: an old value there does not keep a
file. A blob (the bytes, shared by rows with the same hash) is deleted when no row names its
hash any more; blobs on disk with no row at all, and temporary files left by an interrupted
upload, go too once they are older than the grace period.

The rows are deleted in one transaction, the blobs after its commit (a blob that cannot be
removed then is an orphan the next run removes). Run it when uploads are quiet: an upload
older than the grace period that a request attaches while the run is scanning may be lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.storage.files import blob_path
from engine.storage.tables import audit_log, record_history, stored_files

DEFAULT_GRACE = timedelta(hours=24)
_NOT_SCANNED = frozenset({stored_files.name, record_history.name, audit_log.name})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class GcReport:
    """What a run removed (or, with `dry_run`, would remove)."""

    files: int  # stored_files rows
    blobs: int  # blob files on disk (including orphans and temporary leftovers)
    bytes: int  # bytes of those blobs
    dry_run: bool

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {self.files} stored files and {self.blobs} blobs ({self.bytes} bytes)"


def collect_garbage(
    db: sa.Engine, *, root: Path, now: datetime, grace: timedelta = DEFAULT_GRACE, dry_run: bool
) -> GcReport:
    """Delete the stored files older than `grace` that no JSON value names, and their blobs."""
    cutoff = now - grace
    with db.begin() as conn:
        old = {
            row.id: row.sha256
            for row in conn.execute(
                sa.select(stored_files.c.id, stored_files.c.sha256).where(
                    stored_files.c.created_at < cutoff
                )
            )
        }
        garbage = set(old) - referenced_ids(conn, candidates=frozenset(old)) if old else set()
        hashes = {old[file_id] for file_id in garbage}
        if dry_run:  # the rows stay: count the blobs as if they were gone
            kept = _named_hashes(conn, exclude=garbage)
        else:
            for chunk in _chunks(sorted(garbage)):
                conn.execute(sa.delete(stored_files).where(stored_files.c.id.in_(chunk)))
            kept = _named_hashes(conn, exclude=())
    doomed = [blob_path(root, sha) for sha in sorted(hashes - kept)]
    doomed += list(_stray_blobs(root, kept | hashes, cutoff))
    removed = size = 0
    for path in doomed:
        try:
            length = path.stat().st_size
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        removed, size = removed + 1, size + length
    return GcReport(files=len(garbage), blobs=removed, bytes=size, dry_run=dry_run)


def referenced_ids(conn: sa.Connection, *, candidates: frozenset[str]) -> set[str]:
    """The `candidates` that some JSON value of some table names as `{"id": …}`."""
    found: set[str] = set()
    inspector = sa.inspect(conn)
    for table_name in inspector.get_table_names():
        if table_name in _NOT_SCANNED or table_name.startswith("alembic"):
            continue
        columns = [
            c["name"] for c in inspector.get_columns(table_name) if isinstance(c["type"], sa.JSON)
        ]
        for column in columns:
            table = sa.table(table_name, sa.column(column, sa.JSON))
            query = (
                sa.select(table.c[column])
                .where(table.c[column].is_not(None))
                .execution_options(yield_per=1000)  # on the query: the connection goes on
            )
            for (value,) in conn.execute(query):
                found.update(i for i in _ids(value) if i in candidates)
    return found


def _ids(value: Any) -> Iterator[str]:
    """Every string under an `id` key, at any depth (subform rows hold file lists too)."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            yield value["id"]
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item)


def _named_hashes(conn: sa.Connection, *, exclude: Iterable[str]) -> set[str]:
    query = sa.select(stored_files.c.sha256).distinct()
    left_out = sorted(exclude)
    if left_out:
        query = sa.select(stored_files.c.sha256).where(stored_files.c.id.not_in(left_out))
    return set(conn.execute(query).scalars())


def _stray_blobs(root: Path, named: set[str], cutoff: datetime) -> Iterator[Path]:
    """Blobs no row names and temporary files, last written before `cutoff`."""
    if not root.is_dir():
        return
    limit = cutoff.timestamp()
    for path in root.rglob("*"):
        if not path.is_file() or path.stat().st_mtime >= limit:
            continue
        if _SHA256.match(path.name) and path.name in named:
            continue
        yield path


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


__all__ = ["DEFAULT_GRACE", "GcReport", "collect_garbage", "referenced_ids"]

"""Driver integrity errors turned into `ConflictError`s that name the violated constraint.

PostgreSQL reports the constraint name (psycopg `diag`). SQLite reports only the table and
columns of a unique violation; the name is rebuilt from the naming convention
(`uq_<table>_<columns>`), which both the engine tables and the form tables follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from engine.errors import ConflictError
from engine.storage.names import unique_index_name

UNIQUE = "storage.unique-violation"
FOREIGN_KEY = "storage.foreign-key-violation"
NOT_NULL = "storage.not-null-violation"
CHECK = "storage.check-violation"
OTHER = "storage.integrity-violation"
STALE = "storage.stale-version"
BUSY = "storage.busy"

# Another transaction holds the rows or wrote first: SQLite's lock/snapshot errors, PostgreSQL's
# serialization failures and deadlocks. The caller may retry the whole unit of work.
_PG_BUSY = {"40001", "40P01", "55P03"}
_SQLITE_BUSY = ("database is locked", "database table is locked")
_PG_CODES = {"23505": UNIQUE, "23503": FOREIGN_KEY, "23502": NOT_NULL, "23514": CHECK}
_SQLITE_PREFIXES = (
    ("UNIQUE constraint failed", UNIQUE),
    ("FOREIGN KEY constraint failed", FOREIGN_KEY),
    ("NOT NULL constraint failed", NOT_NULL),
    ("CHECK constraint failed", CHECK),
)
_SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")


class ConstraintConflict(ConflictError):
    """A database constraint refused a write; `constraint` names it when the backend says so."""

    def __init__(self, message: str, *, code: str, constraint: str | None = None) -> None:
        super().__init__(message, code=code)
        self.constraint = constraint


def translate_integrity_error(err: sa.exc.IntegrityError) -> ConstraintConflict:
    """The `ConstraintConflict` describing a driver `IntegrityError`."""
    orig = err.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:
        code = _PG_CODES.get(getattr(orig, "sqlstate", None) or "", OTHER)
        constraint = diag.constraint_name
        detail = diag.message_detail or diag.message_primary or str(orig)
        return ConstraintConflict(
            _message(code, constraint, detail), code=code, constraint=constraint
        )
    text = str(orig)
    code = next((c for prefix, c in _SQLITE_PREFIXES if text.startswith(prefix)), OTHER)
    constraint = _sqlite_constraint_name(code, text)
    return ConstraintConflict(_message(code, constraint, text), code=code, constraint=constraint)


def translate_operational_error(err: sa.exc.OperationalError) -> ConflictError | None:
    """A `ConflictError` (`storage.busy`) when `err` is lock contention, else None."""
    orig = err.orig
    if getattr(orig, "sqlstate", None) in _PG_BUSY or str(orig).startswith(_SQLITE_BUSY):
        return ConflictError(f"busy, try again: {orig}", code=BUSY)
    return None


def translate_database_error(err: sa.exc.DBAPIError) -> ConflictError | None:
    """The `ConflictError` for an integrity or contention error, None for anything else."""
    if isinstance(err, sa.exc.IntegrityError):
        return translate_integrity_error(err)
    if isinstance(err, sa.exc.OperationalError):
        return translate_operational_error(err)
    return None


@contextmanager
def translating_conflicts() -> Iterator[None]:
    """Re-raise integrity and lock-contention errors raised inside the block as conflicts."""
    try:
        yield
    except sa.exc.DBAPIError as err:
        conflict = translate_database_error(err)
        if conflict is None:
            raise
        raise conflict from err


def _sqlite_constraint_name(code: str, text: str) -> str | None:
    match = _SQLITE_COLUMNS.search(text)
    if match is None:
        return None
    if code == CHECK:
        return match.group(1).strip()
    if code != UNIQUE:
        return None
    qualified = [part.strip() for part in match.group(1).split(",")]
    table = qualified[0].split(".")[0]
    columns = [part.split(".", 1)[-1] for part in qualified]
    return unique_index_name(table, columns)


def _message(code: str, constraint: str | None, detail: str) -> str:
    kind = code.removeprefix("storage.").replace("-", " ")
    where = f" ({constraint})" if constraint else ""
    return f"{kind}{where}: {detail}"


__all__ = [
    "BUSY",
    "CHECK",
    "FOREIGN_KEY",
    "NOT_NULL",
    "OTHER",
    "STALE",
    "UNIQUE",
    "ConstraintConflict",
    "translate_database_error",
    "translate_integrity_error",
    "translate_operational_error",
    "translating_conflicts",
]

"""Report result caching keyed by the data version of every form a query reads.

Each (app, form) has a version row in `report_data_versions`. `DataVersionBumper`, a
`RecordChange` listener, bumps it in the writer's own transaction, once per transaction and
form however many records the transaction writes: an import of 10,000 tickets costs one
upsert. Concurrent writers of the same form wait on that row until the first commits (the
price of versions that never go backwards; writers of different forms never meet).

A cached result's key holds the query, its parameters, the actor's scope and the versions
read just before running it. Versions come from the database, so each process may keep its own
in-memory `ResultCache` and still never serve a result older than the last committed write. A
result computed while a write commits may be newer than its key says: harmless, as that key
is never asked for again once the new version is visible.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.storage.sqltypes import utc_now
from engine.storage.tables_reports import report_data_versions

if TYPE_CHECKING:
    from engine.forms.events import RecordChange
    from engine.identity.actor import Actor
    from engine.storage.uow import UnitOfWork

DEFAULT_ENTRIES = 512


def bump_data_version(conn: sa.Connection, *, app: str, form: str, now: datetime) -> None:
    """Add one to the form's data version (creating it at 1), in the caller's transaction."""
    table = report_data_versions
    values = {"app": app, "form": form, "version": 1, "updated_at": now}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.app, table.c.form],
        set_={"version": table.c.version + 1, "updated_at": now},
    )
    conn.execute(statement)


def read_data_versions(conn: sa.Connection, *, app: str, forms: Iterable[str]) -> dict[str, int]:
    """The current version of each form; 0 for a form never written since versions began."""
    wanted = sorted(set(forms))
    table = report_data_versions
    query = sa.select(table.c.form, table.c.version).where(
        table.c.app == app, table.c.form.in_(wanted)
    )
    found = {str(form): int(version) for form, version in conn.execute(query)}
    return {form: found.get(form, 0) for form in wanted}


class DataVersionBumper:
    """The `RecordChange` listener: one bump per (transaction, form).

    Transactions are remembered weakly: when one ends, its entry goes with it. The innermost
    transaction is used, so a rolled-back savepoint that held the bump leads to a new bump.
    """

    def __init__(self) -> None:
        self._seen: weakref.WeakKeyDictionary[sa.Transaction, set[tuple[str, str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        conn = uow.conn
        transaction = conn.get_nested_transaction() or conn.get_transaction()
        if transaction is None:  # autocommit use: nothing to piggy-back on, bump every time
            bump_data_version(conn, app=change.app, form=change.form, now=utc_now())
            return
        key = (change.app, change.form)
        with self._lock:
            seen = self._seen.setdefault(transaction, set())
            if key in seen:
                return
            seen.add(key)
        bump_data_version(conn, app=change.app, form=change.form, now=uow.clock())


def actor_scope(actor: Actor | None) -> str:
    """What decides which rows and fields an actor sees: who they are, departments, roles."""
    if actor is None:
        return "system"
    roles = {app: sorted(keys) for app, keys in actor.roles.items()}
    parts = [actor.user_id, actor.is_admin, sorted(actor.department_ids), roles]
    return _digest(parts)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheKey:
    app: str
    query: str  # digest of the query definition
    parameters: str  # digest of filters, drill, time zone, limit
    scope: str
    versions: tuple[tuple[str, int], ...]

    @classmethod
    def build(
        cls,
        *,
        app: str,
        query: Any,
        parameters: Any,
        scope: str,
        versions: Mapping[str, int],
    ) -> CacheKey:
        return cls(app, _digest(query), _digest(parameters), scope, tuple(sorted(versions.items())))


class ResultCache:
    """A thread-safe least-recently-used map, one per process: report results by `CacheKey`,
    and compiled reports by their own keys."""

    def __init__(self, *, max_entries: int = DEFAULT_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._entries:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


__all__ = [
    "CacheKey",
    "DataVersionBumper",
    "ResultCache",
    "actor_scope",
    "bump_data_version",
    "read_data_versions",
]

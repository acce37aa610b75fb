"""The unit of work: one connection, one transaction, rolled back unless `commit()` is called."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType

import sqlalchemy as sa

from engine.storage.audit import AuditLog
from engine.storage.conflicts import translate_database_error, translating_conflicts
from engine.storage.definitions import BundleFileStore, DefinitionStore
from engine.storage.identity import DepartmentStore, RoleStore, UserStore
from engine.storage.sqltypes import utc_now


class UnitOfWork:
    """`with UnitOfWork(engine) as uow: ...; uow.commit()`.

    Leaving the block without `commit()` (or through an exception) rolls everything back. After
    `commit()` the unit stays usable: later work runs in a new transaction. Integrity and
    lock-contention errors that escape the block, or happen at commit, surface as
    `ConflictError`s (`storage.busy` for contention: retry the whole unit).

    Bound to a `Connection` instead of an `Engine`, the unit works in a SAVEPOINT of that
    connection's transaction (SQLAlchemy's `join_transaction_mode="create_savepoint"`): its
    `commit()` releases the savepoint and the caller's transaction decides. Tests use this.
    """

    conn: sa.Connection
    definitions: DefinitionStore
    bundle_files: BundleFileStore
    audit: AuditLog
    users: UserStore
    departments: DepartmentStore
    roles: RoleStore

    def __init__(
        self, bind: sa.Engine | sa.Connection, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._bind = bind
        self._clock = clock
        self._transaction: sa.Transaction | None = None

    def __enter__(self) -> UnitOfWork:
        self.conn = self._bind if isinstance(self._bind, sa.Connection) else self._bind.connect()
        self._transaction = self._begin()
        self.definitions = DefinitionStore(self.conn, clock=self._clock)
        self.bundle_files = BundleFileStore(self.conn, clock=self._clock)
        self.audit = AuditLog(self.conn, clock=self._clock)
        self.users = UserStore(self.conn, clock=self._clock)
        self.departments = DepartmentStore(self.conn, clock=self._clock)
        self.roles = RoleStore(self.conn, clock=self._clock)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._transaction = None
            if self.conn is not self._bind:
                self.conn.close()
        conflict = translate_database_error(exc) if isinstance(exc, sa.exc.DBAPIError) else None
        if conflict is not None:
            raise conflict from exc

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._clock

    def commit(self) -> None:
        """Make the work so far durable and start a new transaction for what follows."""
        transaction = self._require_transaction()
        with translating_conflicts():
            transaction.commit()
        self._transaction = self._begin()

    def rollback(self) -> None:
        """Discard the work since the last commit and start a new transaction."""
        self._require_transaction().rollback()
        self._transaction = self._begin()

    def _begin(self) -> sa.Transaction:
        if self.conn is self._bind:
            return self.conn.begin_nested()
        return self.conn.begin()

    def _require_transaction(self) -> sa.Transaction:
        if self._transaction is None or not self._transaction.is_active:
            raise RuntimeError("the unit of work is not open")
        return self._transaction


__all__ = ["UnitOfWork"]

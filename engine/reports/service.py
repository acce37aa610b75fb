"""Installed reports run for an actor: load the definition, compile (cached), check, run.

`ReportService.run` is what the API and dashboards call. Compiled reports are cached per
process by (app, report key and version, the app's form fingerprint, dialect, time zone): a
new report or form version compiles afresh, so several processes stay consistent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.forms.record_access import Who, form_accesses
from engine.identity.permissions import require
from engine.registry import DefinitionRegistry
from engine.reports.cache import ResultCache
from engine.reports.compiler import CompiledReport, compile_report
from engine.reports.query import FilterClause
from engine.reports.result import QueryResult
from engine.reports.runner import run_report
from engine.reports.spec import ReportSpec
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

REPORT_KIND = "reports"
REPORT_NOT_FOUND = "report.not-found"


class ReportService:
    """Runs installed reports; one per application, shared by requests (thread-safe)."""

    def __init__(
        self,
        db: sa.Engine,
        *,
        registry: DefinitionRegistry | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_compiled: int = 512,
    ) -> None:
        self._db = db
        self._registry = registry or DefinitionRegistry()
        self._clock = clock
        self._compiled = ResultCache(max_entries=max_compiled)  # compiled reports, LRU

    def compiled(
        self, uow: UnitOfWork, *, app: str, key: str, timezone: str | None = None
    ) -> CompiledReport:
        """The current version of report `key` of `app`, compiled for this database.

        Raises:
            NotFoundError: `report.not-found`.
            DefinitionError: the report does not fit its forms (`report.*` with paths).
        """
        try:
            record = uow.definitions.get_current(app=app, kind=REPORT_KIND, key=key)
        except NotFoundError as err:
            raise NotFoundError(
                f"report {app}.{key} is not installed", code=REPORT_NOT_FOUND
            ) from err
        spec = ReportSpec.model_validate(record.body)
        form = str(spec.dataset.form).removeprefix(f"{app}.")
        definition = self._registry.form(uow, app=app, key=form)
        dialect = uow.conn.dialect.name
        cache_key = (
            app,
            key,
            record.version,
            record.digest,
            definition.fingerprint,
            dialect,
            timezone,
        )
        found: CompiledReport | None = self._compiled.get(cache_key)
        if found is None:
            found = compile_report(
                spec, app=app, forms=definition.forms, dialect=dialect, timezone=timezone
            )
            self._compiled.put(cache_key, found)
        return found

    def run(
        self,
        *,
        app: str,
        key: str,
        actor: Who,
        timezone: str | None = None,
        extra_filters: Sequence[FilterClause] = (),
        drill: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        """Run report `key` for `actor` (403 without read on its form, or on hidden fields)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            compiled = self.compiled(uow, app=app, key=key, timezone=timezone)
            accesses = form_accesses(uow=uow, who=actor, app=app, forms=compiled.forms)
            require(accesses[compiled.form], "read")
            return run_report(
                uow.conn,
                compiled,
                actor=actor,
                now=self._clock(),
                extra_filters=extra_filters,
                drill=drill,
                limit=limit,
                access=accesses,
            )


__all__ = ["REPORT_KIND", "REPORT_NOT_FOUND", "ReportService"]

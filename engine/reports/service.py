"""Installed and ad-hoc reports run for an actor: the one path by which the API, dashboards,
alerts and exports get results.

`ReportService` loads a definition, compiles it (compiled reports are cached per process by
the spec, the app's form fingerprint, dialect and time zone: a new report or form version
compiles afresh), checks the actor's access, reads the data versions of every form the query
reads and answers from the `ResultCache` or runs the compiled query. The cache key holds the
query, its parameters (filters, drill, limit, compare), the actor's scope and, for queries
whose expressions read the clock, the current minute or day. `payload` renders a result,
running the extra grouping levels a pivot needs as their own cached queries.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.forms.record_access import Who, form_accesses
from engine.identity.permissions import FormAccess, require
from engine.registry import DefinitionRegistry, FormDefinition
from engine.reports.cache import CacheKey, ResultCache, read_data_versions
from engine.reports.charts import render_chart
from engine.reports.charts_data import table_payload
from engine.reports.compiler import CompiledReport, compile_report
from engine.reports.pivot import build_pivot, pivot_levels
from engine.reports.query import FilterClause
from engine.reports.result import QueryResult
from engine.reports.runner import run_report
from engine.reports.runs import Run, at_level, clock_part, run_in_threads, scope_key
from engine.reports.spec import ReportSpec
from engine.reports.worktime_calendars import ReportCalendars
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

REPORT_KIND = "reports"
REPORT_NOT_FOUND = "report.not-found"
PLAIN_RUN = Run()  # no request filters, drill or limit


class ReportService:
    """Compiles and runs reports for actors through a per-process result cache; one per
    application, shared by requests and dashboard widgets (thread-safe)."""

    def __init__(
        self,
        db: sa.Engine,
        *,
        registry: DefinitionRegistry | None = None,
        cache: ResultCache | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_compiled: int = 512,
    ) -> None:
        self.db = db
        self.registry = registry or DefinitionRegistry()
        self.cache = cache or ResultCache()
        self.clock = clock
        self._compiled = ResultCache(max_entries=max_compiled)  # compiled reports, LRU
        self._calendars = ReportCalendars()  # for WORKTIMEADD
        # form definitions read in a unit of work: a dashboard compiles all its widgets in one
        # and reads the app's forms once, not once per widget
        self._forms: weakref.WeakKeyDictionary[UnitOfWork, dict[str, FormDefinition]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def unit(self) -> UnitOfWork:
        return UnitOfWork(self.db, clock=self.clock)

    def installed(self, uow: UnitOfWork, *, app: str, key: str) -> ReportSpec:
        """The current definition of report `key` (raises `report.not-found`)."""
        try:
            record = uow.definitions.get_current(app=app, kind=REPORT_KIND, key=key)
        except NotFoundError as err:
            raise NotFoundError(
                f"report {app}.{key} is not installed", code=REPORT_NOT_FOUND
            ) from err
        return ReportSpec.model_validate(record.body)

    def compile(
        self, uow: UnitOfWork, *, app: str, spec: ReportSpec, timezone: str | None = None
    ) -> CompiledReport:
        """`spec` (installed, drilled, a pivot level or ad hoc) compiled for this database.

        Raises:
            DefinitionError: the report does not fit its forms (`report.*` with paths).
        """
        form = str(spec.dataset.form).removeprefix(f"{app}.")
        definition = self.form_definition(uow, app=app, key=form)
        dialect = uow.conn.dialect.name
        calendars = self._calendars.for_report(uow, app=app, spec=spec)
        key = (app, spec.model_dump_json(), definition.fingerprint, dialect, timezone,
               calendars.digest)  # fmt: skip
        found: CompiledReport | None = self._compiled.get(key)
        if found is None:
            found = compile_report(
                spec,
                app=app,
                forms=definition.forms,
                dialect=dialect,
                timezone=timezone,
                calendars=calendars,
            )
            self._compiled.put(key, found)
        return found

    def form_definition(self, uow: UnitOfWork, *, app: str, key: str) -> FormDefinition:
        """Form `key` of `app` as the registry compiles it, read once per unit of work."""
        with self._lock:
            seen = self._forms.setdefault(uow, {})
            found = seen.get(key)
        if found is None:
            found = self.registry.form(uow, app=app, key=key)
            with self._lock:
                seen[key] = found
        return found

    def compiled(
        self, uow: UnitOfWork, *, app: str, key: str, timezone: str | None = None
    ) -> CompiledReport:
        """The current version of installed report `key`, compiled (`report.not-found`)."""
        spec = self.installed(uow, app=app, key=key)
        return self.compile(uow, app=app, spec=spec, timezone=timezone)

    def accesses(
        self, uow: UnitOfWork, compiled: CompiledReport, actor: Who
    ) -> dict[str, FormAccess]:
        accesses = form_accesses(uow=uow, who=actor, app=compiled.app, forms=compiled.forms)
        require(accesses[compiled.form], "read")
        return accesses

    def result(
        self,
        uow: UnitOfWork,
        compiled: CompiledReport,
        *,
        actor: Who,
        run: Run = PLAIN_RUN,
        versions: Mapping[str, int] | None = None,
    ) -> tuple[QueryResult, bool]:
        """The result of `compiled` for `actor`, and whether it came from the cache.

        `versions`: the data versions of the forms, when the caller read them just before
        (a dashboard reads them for all its widgets at once); else they are read here.

        Raises:
            PermissionDenied: no read on a form of the query, or a hidden field in it.
            ReportQueryError: a filter or drill that does not fit the report.
        """
        accesses = self.accesses(uow, compiled, actor)
        now = self.clock()
        if versions is None or not compiled.forms <= versions.keys():
            versions = read_data_versions(uow.conn, app=compiled.app, forms=compiled.forms)
        versions = {form: versions[form] for form in sorted(compiled.forms)}
        key = CacheKey.build(
            app=compiled.app,
            query=[
                compiled.spec.model_dump(mode="json"),
                str(compiled.zone),
                compiled.dialect,
                compiled.calendars.digest,  # WORKTIMEADD: a calendar change is a new key
            ],
            parameters=[*run.parameters(), clock_part(compiled.spec, now)],
            scope=scope_key(actor, accesses),
            versions=versions,
        )
        cached = self.cache.get(key)
        if isinstance(cached, QueryResult):
            return cached, True
        if uow.conn.dialect.name == "postgresql":
            # A report is one short analytic statement: PostgreSQL's JIT compilation cost more
            # than it saved on the cockpit's widgets (up to 1 s each, bench/RESULTS.md).
            uow.conn.exec_driver_sql("SET LOCAL jit = off")
        result = run_report(
            uow.conn,
            compiled,
            actor=actor,
            now=now,
            extra_filters=run.filters,
            drill=run.drill,
            limit=run.limit,
            access=accesses,
        )
        self.cache.put(key, result)
        return result, False

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
        """Installed report `key` for `actor` (403 without read on its form, or on hidden
        fields), through the cache like every other run."""
        with self.unit() as uow:
            compiled = self.compiled(uow, app=app, key=key, timezone=timezone)
            run = Run(tuple(extra_filters), drill, limit)
            return self.result(uow, compiled, actor=actor, run=run)[0]

    def payload(
        self,
        uow: UnitOfWork,
        compiled: CompiledReport,
        *,
        actor: Who,
        run: Run = PLAIN_RUN,
        timezone: str | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """The JSON answer for one report: typed rows, the chart (or pivot), meta."""
        result, cached = self.result(uow, compiled, actor=actor, run=run, versions=versions)
        spec = compiled.spec
        if spec.chart.type == "pivot":
            chart = self._pivot(uow, compiled, result, actor=actor, run=run, timezone=timezone)
        else:
            chart = render_chart(spec.chart, result)
        return {
            "report": spec.key,
            "label": _label(spec),
            "chart_type": spec.chart.type,
            "chart": chart,
            "data": table_payload(result),
            "meta": {k: v for k, v in result.meta.items() if _plain(v)},
            "cached": cached,
        }

    def _pivot(
        self,
        uow: UnitOfWork,
        compiled: CompiledReport,
        finest: QueryResult,
        *,
        actor: Who,
        run: Run,
        timezone: str | None,
    ) -> dict[str, Any]:
        """Columns: the chart's `series` dimension; rows: the other dimensions."""
        spec = compiled.spec
        columns = (spec.chart.series,) if spec.chart.series else ()
        rows = tuple(d.key for d in spec.dimensions if d.key not in columns)
        measures = spec.chart.y or tuple(m.key for m in spec.measures)
        levels: dict[tuple[str, ...], QueryResult] = {rows + columns: finest}
        for level in pivot_levels(rows, columns)[1:]:
            level_spec = at_level(spec, level)
            level_compiled = self.compile(uow, app=compiled.app, spec=level_spec,
                                          timezone=timezone)  # fmt: skip
            level_run = Run(run.filters, None, None)
            levels[level] = self.result(uow, level_compiled, actor=actor, run=level_run)[0]
        return build_pivot(rows=rows, columns=columns, measures=measures, levels=levels)


def _label(spec: ReportSpec) -> Any:
    label = spec.label
    return label if isinstance(label, str | dict) else str(label)


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


__all__ = ["REPORT_KIND", "REPORT_NOT_FOUND", "ReportService", "Run", "run_in_threads"]

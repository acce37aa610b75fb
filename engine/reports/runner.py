"""Running a compiled report for an actor: permissions injected, one statement, typed rows.

`run_report` refuses (403) a report over a form the actor may not read and any hidden field it
names (as a dimension, measure, filter or drill), puts the actor's read scope into the WHERE
clause (the base form) and the ON clauses (joined forms), and runs one SELECT. Rows come back
as the database aggregated them; values are only converted to plain Python types (Decimal to
float, SQLite date text to `date`), so both databases give equal rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import PermissionDenied
from engine.forms.record_access import Who, form_accesses
from engine.identity.actor import Actor
from engine.identity.permissions import HIDDEN_FIELD, FormAccess, admin_access, require
from engine.reports.blend_runner import population_requests
from engine.reports.compiler import CompiledReport
from engine.reports.dataset import Dataset
from engine.reports.exists import with_exists_scope
from engine.reports.periods import result_flags, shifted_filters
from engine.reports.query import FilterClause, bad, clause_condition
from engine.reports.result import QueryResult, ResultColumn
from engine.reports.statement import OTHER, build_statement
from engine.storage.permission_sql import scope_conditions
from engine.storage.uow import UnitOfWork

Sql = ColumnElement[Any]
STREAM_BATCH = 2_000


@dataclass(frozen=True, slots=True)
class _Prepared:
    statement: sa.Select[Any]
    limit: int | None


def accesses_for(
    conn: sa.Connection, compiled: CompiledReport, actor: Who, forms: Iterable[str] = ()
) -> dict[str, FormAccess]:
    """The actor's access to every form the report reads, and `forms` (roles read once)."""
    wanted = sorted(set(compiled.forms) | set(forms))
    if not isinstance(actor, Actor):
        return {form: admin_access(app=compiled.app, form=form) for form in wanted}
    with UnitOfWork(conn) as uow:
        return form_accesses(uow=uow, who=actor, app=compiled.app, forms=wanted)


def run_report(
    conn: sa.Connection,
    compiled: CompiledReport,
    *,
    actor: Who,
    now: datetime,
    extra_filters: Sequence[FilterClause] = (),
    drill: Mapping[str, Any] | None = None,
    limit: int | None = None,
    access: Mapping[str, FormAccess] | None = None,
) -> QueryResult:
    """Run `compiled` for `actor`; `extra_filters` and `drill` narrow the rows (bound values).

    `limit` overrides the report's; `truncated` tells whether rows were left out. With a
    `compare` report and a `between` filter on a date or datetime field, a second statement
    runs the same query over the previous period (or year) into `compare`. The report's n<30
    guard and provisional window become `meta` flags (engine/reports/periods.py).

    Raises:
        PermissionDenied: `identity.permission-denied` without read on a form the report
            reads, `identity.hidden-field` when it names a field hidden from the actor.
        ReportQueryError: `report.bad-filter` / `report.unknown-field` for a filter or drill
            that does not fit (path into `extra_filters` or `drill`).
    """
    prepared = _prepare(conn, compiled, actor, now, extra_filters, drill, limit, access)
    fetched = [_convert(compiled.columns, row) for row in conn.execute(prepared.statement)]
    rows, meta, others = _finish(compiled, fetched)
    truncated = False
    if prepared.limit is not None and not compiled.spec.others and len(rows) > prepared.limit:
        rows, truncated = rows[: prepared.limit], True
    compare = None
    if compiled.spec.compare is not None:
        shifted = shifted_filters(compiled, extra_filters)
        meta["compare"] = "previous period filter" if shifted else "no date range filter"
        if shifted is not None:
            again = _prepare(conn, compiled, actor, now, shifted, drill, limit, access)
            previous = [_convert(compiled.columns, r) for r in conn.execute(again.statement)]
            compare = tuple(_finish(compiled, previous)[0])
    meta.update(result_flags(compiled, rows, filters=extra_filters, now=now, compare=compare))
    return QueryResult(
        columns=compiled.columns,
        rows=tuple(rows),
        truncated=truncated,
        compare=compare,
        others=others,
        meta=meta,
    )


def stream_rows(
    conn: sa.Connection,
    compiled: CompiledReport,
    *,
    actor: Who,
    now: datetime,
    extra_filters: Sequence[FilterClause] = (),
    drill: Mapping[str, Any] | None = None,
    limit: int | None = None,
    access: Mapping[str, FormAccess] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The report's rows one by one from a server-side cursor (flat memory for exports).

    Same checks and statement as `run_report`, without compare and without the truncation
    probe; an others row (top-N) comes last with a blank first dimension.
    """
    prepared = _prepare(
        conn, compiled, actor, now, extra_filters, drill, limit, access, probe=False
    )
    statement = prepared.statement.execution_options(yield_per=STREAM_BATCH)
    drop_other = compiled.spec.others and compiled.aggregated
    for row in conn.execute(statement):
        converted = _convert(compiled.columns, row)
        yield converted[:-1] if drop_other else converted


def _prepare(
    conn: sa.Connection,
    compiled: CompiledReport,
    actor: Who,
    now: datetime,
    extra_filters: Sequence[FilterClause],
    drill: Mapping[str, Any] | None,
    limit: int | None,
    access: Mapping[str, FormAccess] | None,
    *,
    probe: bool = True,
) -> _Prepared:
    accesses = dict(access) if access is not None else accesses_for(conn, compiled, actor)
    dataset = replace(compiled.dataset, sources=dict(compiled.dataset.sources))
    reads = set(compiled.reads())
    conditions: list[Sql] = []
    for index, clause in enumerate(extra_filters):
        where = f"/filters/{index}"
        column = _resolve(dataset, clause.field, f"{where}/field")
        reads.update(column.reads)
        conditions.append(clause_condition(column.sql, column.family, clause, zone=compiled.zone,
                                           where=where))  # fmt: skip
    keys = {d.key for d in compiled.dimensions}
    for key in drill or {}:
        if key not in keys:
            raise bad(f"/drill/{key}", f"no dimension {key!r}", code="report.unknown-field")
    requests = population_requests(compiled, extra_filters)  # a blend's populations
    for request in requests:
        reads.update(request.reads)
    forms = {source.form for source in dataset.sources.values()}
    forms.update(form for request in requests for form in request.forms)
    if not forms <= accesses.keys():  # a request filter reached a form the caller did not load
        for form, found in accesses_for(conn, compiled, actor, forms).items():
            accesses.setdefault(form, found)
    _check_access(compiled, accesses, forms, reads)
    join_conditions: dict[str, list[Sql]] = {}
    if isinstance(actor, Actor):
        base = dataset.base
        conditions += _scope(conn, accesses[base.form], base.table, actor, now)
        for name, source in dataset.sources.items():
            if name != base.name and source.prefix == "":
                join_conditions[name] = _scope(
                    conn, accesses[source.form], source.table, actor, now
                )
    populations = None
    if requests:
        def scope(form: str, table: Any) -> list[Sql]:
            assert isinstance(actor, Actor)
            return _scope(conn, accesses[form], table, actor, now)

        actor_scope = scope if isinstance(actor, Actor) else None
        populations = {request.key: request.input(actor_scope) for request in requests}
    wanted = limit if limit is not None else compiled.spec.limit
    probe_limit = wanted + 1 if (wanted and probe and not compiled.spec.others) else wanted
    plain = not (conditions or any(join_conditions.values()) or drill or requests)
    if plain and compiled.clock_free and len(dataset.sources) == len(compiled.dataset.sources):
        # Nothing request-specific: the statement is the same every time (SQLAlchemy's own
        # compiled cache then serves it too); building it costs milliseconds in Python.
        cached = compiled.statements.get(probe_limit)
        if cached is None:
            cached = build_statement(compiled, now=now, limit=probe_limit, dataset=dataset)
            compiled.statements[probe_limit] = cached
        return _Prepared(cached, wanted)
    statement = build_statement(
        compiled,
        now=now,
        conditions=conditions,
        join_conditions=join_conditions,
        drill=drill,
        limit=probe_limit,
        dataset=dataset,
        populations=populations,
    )
    return _Prepared(with_exists_scope(statement, dataset, join_conditions), wanted)


def _resolve(dataset: Dataset, path: str, where: str) -> Any:
    from engine.errors import DefinitionError

    try:
        return dataset.resolve(path, where=where)
    except DefinitionError as err:
        raise bad(where, err.problems[0].message, code=err.problems[0].code) from err


def _check_access(
    compiled: CompiledReport,
    accesses: Mapping[str, FormAccess],
    forms: set[str],
    reads: set[tuple[str, str]],
) -> None:
    require(accesses[compiled.form], "read")
    for form in sorted(forms - {compiled.form}):
        require(accesses[form], "read")
    hidden = sorted(f"{form}.{key}" for form, key in reads if accesses[form].is_hidden(key))
    if hidden:
        raise PermissionDenied(f"fields you cannot see: {', '.join(hidden)}", code=HIDDEN_FIELD)


def _scope(
    conn: sa.Connection, access: FormAccess, table: Any, actor: Actor, now: datetime
) -> list[Sql]:
    if access.is_unrestricted("read"):
        return []
    dialect = conn.dialect.name
    return list(scope_conditions(access, table, actor=actor, dialect=dialect, now=now))


def _convert(columns: Sequence[ResultColumn], row: Sequence[Any]) -> tuple[Any, ...]:
    values = list(row)
    for index, column in enumerate(columns):
        value = values[index]
        if value is None:
            continue
        if column.type == "integer":
            values[index] = int(value)
        elif (
            column.type == "number"
            and isinstance(value, Decimal | int)
            and not isinstance(value, bool)
        ):
            values[index] = float(value)
        elif column.type == "date" and isinstance(value, datetime):
            values[index] = value.date()
        elif column.type == "date" and isinstance(value, str):
            values[index] = date.fromisoformat(value[:10])
        elif column.type == "boolean":
            values[index] = bool(value)
    return tuple(values)


def _finish(
    compiled: CompiledReport, rows: list[tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], dict[str, Any], bool]:
    """Drop the others marker column; count the trailing others rows."""
    meta: dict[str, Any] = {}
    if not (compiled.spec.others and compiled.aggregated):
        return rows, meta, False
    width = len(compiled.columns)
    marked = [(row[:width], bool(row[width])) for row in rows]
    count = sum(1 for _, other in marked if other)
    meta["others_rows"] = count
    meta["others_marker"] = OTHER
    return [row for row, _ in marked], meta, count > 0


__all__ = ["STREAM_BATCH", "accesses_for", "run_report", "stream_rows"]

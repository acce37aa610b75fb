"""List queries on form tables: a checked `ListQuery` compiled to one SELECT with bound values.

Filters, expression filters, search, soft-delete and the caller's `extra_conditions` (the seam
for row permissions) are ANDed into one WHERE; lookups and `relation.field` names join the
related form's table. Pages are keyset pages on (sort keys…, id), ascending keys with blanks
last and descending keys with blanks first. Counts are exact up to `EXACT_COUNT_LIMIT` rows and
planner estimates above it on PostgreSQL; SQLite always counts exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import FieldError
from engine.expr import ExpressionError, references
from engine.expr.sql import compile_filter
from engine.forms import fields as f
from engine.forms.compiler import CompiledForm
from engine.forms.listing import (
    CHOICES,
    DATETIME,
    IDS,
    LINKS,
    TEXT,
    AllOf,
    AnyOf,
    Condition,
    FieldRef,
    FilterNode,
    ListQuery,
    ListQueryError,
    Not,
    Relative,
    SortKey,
    date_window,
    encode_cursor,
    resolve_field,
)
from engine.forms.spec import FormSpec
from engine.storage._fts import search_condition, search_index, searched_columns
from engine.storage.form_tables import FormTables, form_tables

EXACT_COUNT_LIMIT = 10_000
KANBAN_PER_COLUMN = 20
Sql = ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class QueryTarget:
    """The tables a form's lists read: its own, and those of the forms it relates to."""

    app: str
    form: CompiledForm
    forms: Mapping[str, FormSpec]
    tables: FormTables
    related: Mapping[str, FormTables]
    searched: tuple[str, ...]

    @property
    def main(self) -> sa.Table:
        return self.tables.main


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RecordCount:
    value: int
    exact: bool


@dataclass(frozen=True, slots=True)
class KanbanColumn:
    """One value of the grouping field (None: blank) with its count and first records."""

    value: str | None
    count: int
    items: list[dict[str, Any]] = field(default_factory=list)


def query_target(*, app: str, form: CompiledForm, forms: Mapping[str, FormSpec]) -> QueryTarget:
    """The tables for listing `form`; build once per definition version and reuse."""
    all_forms = {**forms, form.key: form.spec}
    related_specs = list(all_forms.values())
    tables = form_tables(app=app, form=form.spec, related_forms=related_specs)
    related = {
        str(item.form): form_tables(
            app=app, form=all_forms[str(item.form)], related_forms=related_specs
        )
        for item in form.spec.fields
        if isinstance(item, f.RelationField) and str(item.form) in all_forms
    }
    return QueryTarget(
        app=app,
        form=form,
        forms=MappingProxyType(all_forms),
        tables=tables,
        related=MappingProxyType(related),
        searched=searched_columns(form.spec, tables),
    )


# --- columns and joins ---------------------------------------------------------------------


class _Compiler:
    """Builds one query's clauses; collects the joins its column references need."""

    def __init__(self, conn: sa.Connection, target: QueryTarget, now: datetime, tz: tzinfo):
        self.conn, self.target, self.now, self.tz = conn, target, now, tz
        self.dialect = conn.dialect.name
        self.joins: dict[str, Any] = {}

    def column(self, ref: FieldRef) -> Sql:
        table: Any = self.target.main
        tables = self.target.tables
        if ref.via is not None:
            table, tables = self._join(ref.via, str(ref.target_form))
        if ref.system:
            return table.c[ref.column]  # type: ignore[no-any-return]
        if ref.part is not None:
            return table.c[f"{ref.column}__{ref.part}"]  # type: ignore[no-any-return]
        return table.c[tables.field_columns[ref.column][0]]  # type: ignore[no-any-return]

    def _join(self, relation: str, form_key: str) -> tuple[Any, FormTables]:
        tables = self.target.related[form_key]
        if relation not in self.joins:
            self.joins[relation] = tables.main.alias(f"rel_{relation}")
        return self.joins[relation], tables

    def source(self) -> Any:
        joined: Any = self.target.main
        for relation, alias in self.joins.items():
            joined = joined.outerjoin(alias, alias.c.id == self.target.main.c[relation])
        return joined

    # --- WHERE ------------------------------------------------------------------------------

    def where(self, query: ListQuery, extra: Iterable[Sql]) -> list[Sql]:
        main = self.target.main
        deleted = main.c.deleted_at
        clauses: list[Sql] = [deleted.is_not(None) if query.trash else deleted.is_(None)]
        if query.filter is not None:
            clauses.append(self.node(query.filter))
        if query.filter_expr is not None:
            clauses.append(self.expression(query))
        if query.search is not None:
            index = search_index(self.conn, main.name)
            columns, text = self.target.searched, query.search
            clauses.append(search_condition(self.conn, main, columns, text, index=index))
        clauses.extend(extra)
        return clauses

    def node(self, node: FilterNode) -> Sql:
        if isinstance(node, AllOf):
            return sa.and_(sa.true(), *(self.node(item) for item in node.items))
        if isinstance(node, AnyOf):
            return sa.or_(sa.false(), *(self.node(item) for item in node.items))
        if isinstance(node, Not):
            # The complement: blanks make the inner condition NULL, and NOT NULL keeps nothing.
            return sa.not_(sa.func.coalesce(self.node(node.item), sa.false()))
        return self.condition(node)

    def condition(self, cond: Condition) -> Sql:
        if cond.ref.family in (CHOICES, IDS):
            return _array_condition(self.column(cond.ref), cond, self.dialect)
        if cond.ref.family == LINKS:
            return self._links_condition(cond)
        col = self.column(cond.ref)
        if isinstance(cond.value, Relative):
            return self._relative(col, cond)
        return _scalar_condition(col, cond)

    def _relative(self, col: Sql, cond: Condition) -> Sql:
        today = self.now.astimezone(self.tz).date()
        first, last = date_window(cond.value, today)
        low: Any = first
        high: Any = last
        if cond.ref.family == DATETIME:
            low, high = _midnight(first, self.tz), _midnight(last + timedelta(days=1), self.tz)
            inside = sa.and_(col >= low, col < high)
            outside = {"lt": col < low, "le": col < high, "gt": col >= high, "ge": col >= low}
        else:
            inside = sa.and_(col >= low, col <= high)
            outside = {"lt": col < low, "le": col <= high, "gt": col > high, "ge": col >= low}
        if cond.op == "eq":
            return inside
        if cond.op == "ne":
            return sa.or_(col.is_(None), sa.not_(inside))
        chosen: Sql = outside[cond.op]
        return chosen

    def _links_condition(self, cond: Condition) -> Sql:
        link = self.target.tables.children.get(cond.ref.column)
        main = self.target.main
        if link is None:
            raise ListQueryError([FieldError("/filter", "list.not-filterable", "no link table")])
        linked = sa.select(link.c.target_id).where(link.c.source_id == main.c.id)

        def has(values: Sequence[Any]) -> Sql:
            return linked.where(link.c.target_id.in_(list(values))).exists()

        values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
        if cond.op == "contains":
            return sa.and_(*(has([value]) for value in values))
        if cond.op == "in":
            return has(values)
        if cond.op == "not_in":
            return sa.not_(has(values))
        exists = linked.exists()
        return sa.not_(exists) if cond.op == "is_blank" else exists

    def expression(self, query: ListQuery) -> Sql:
        assert query.filter_expr is not None  # checked by the caller
        columns: dict[str, Sql] = {}
        for name in sorted(references(query.filter_expr)):
            ref = resolve_field(self.target.form.spec, name, self.target.forms)
            if ref is not None and ref.family not in (LINKS,):
                columns[name] = self.column(ref)
        try:
            return compile_filter(query.filter_expr, columns, dialect=self.dialect, now=self.now)
        except ExpressionError as err:
            error = FieldError("/filter_expr", "list.bad-filter-expr", f"{err.code}: {err}")
            raise ListQueryError([error]) from err

    # --- ORDER BY and keyset ----------------------------------------------------------------

    def order(self, sort: Sequence[SortKey], columns: Sequence[Sql] | None = None) -> list[Sql]:
        """ORDER BY the sort keys then id; `columns` (keys…, id) replace the resolved ones."""
        if columns is None:
            columns = [self.column(key.ref) for key in sort] + [self.target.main.c.id]
        clauses: list[Sql] = [
            col.desc().nulls_first() if key.descending else col.asc().nulls_last()
            for key, col in zip(sort, columns, strict=False)
        ]
        last = columns[-1]
        clauses.append(last.desc() if _id_descending(sort) else last.asc())
        return clauses

    def after(self, sort: Sequence[SortKey], values: Sequence[Any]) -> Sql:
        """Rows strictly after the row whose sort-key values (then id) are `values`."""
        keys = [(self.column(k.ref), k.descending, k.ref.nullable) for k in sort]
        keys.append((self.target.main.c.id, _id_descending(sort), False))
        branches = []
        for index, (col, descending, nullable) in enumerate(keys):
            equal = [_equal(c, v) for (c, _, _), v in zip(keys[:index], values, strict=False)]
            branches.append(sa.and_(*equal, _beyond(col, values[index], descending, nullable)))
        return sa.or_(*branches)


def _id_descending(sort: Sequence[SortKey]) -> bool:
    return sort[-1].descending if sort else True


def _equal(col: Sql, value: Any) -> Sql:
    return col.is_(None) if value is None else col == _bound(col, value)


def _bound(col: Sql, value: Any) -> Sql:
    """`value` as a parameter of `col`'s type (SQLAlchemy refuses `col > True` otherwise)."""
    return sa.literal(value, type_=col.type)


def _beyond(col: Sql, value: Any, descending: bool, nullable: bool) -> Sql:
    """Values after `value` in the key's order: blanks last ascending, first descending."""
    if value is None:
        return col.is_not(None) if descending else sa.false()
    bound = _bound(col, value)
    if descending:
        return col < bound
    return sa.or_(col > bound, col.is_(None)) if nullable else col > bound


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _scalar_condition(col: Sql, cond: Condition) -> Sql:
    op, value = cond.op, cond.value
    if op == "is_blank":
        return sa.or_(col.is_(None), col == "") if cond.ref.family == TEXT else col.is_(None)
    if op == "is_not_blank":
        return sa.and_(col.is_not(None), col != "") if cond.ref.family == TEXT else col.is_not(None)
    if op == "ne":
        return sa.or_(col.is_(None), col != value)
    if op == "not_in":
        return sa.or_(col.is_(None), col.not_in(list(value)))
    if op == "in":
        return col.in_(list(value))
    if op == "between":
        return col.between(value[0], value[1])
    if op == "contains":
        return col.icontains(value, autoescape=True)
    if op == "starts_with":
        return col.istartswith(value, autoescape=True)
    compare = {"eq": "__eq__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}
    return getattr(col, compare[op])(value)  # type: ignore[no-any-return]


def _array_condition(col: Sql, cond: Condition, dialect: str) -> Sql:
    """Conditions on JSON arrays (multiselect keys, multiple user or department ids)."""
    if cond.op in ("is_blank", "is_not_blank"):
        empty = _array_is_empty(col, dialect)
        return empty if cond.op == "is_blank" else sa.not_(empty)
    values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
    tests = [_array_has(col, value, dialect) for value in values]
    if cond.op == "contains":
        return sa.and_(*tests)
    anyof = sa.or_(*tests)
    return anyof if cond.op == "in" else sa.or_(_array_is_empty(col, dialect), sa.not_(anyof))


def _array_has(col: Sql, value: Any, dialect: str) -> Sql:
    if dialect == "postgresql":
        wanted = sa.bindparam(None, json.dumps([value]), type_=sa.Text).cast(JSONB)
        return col.op("@>", is_comparison=True)(wanted)
    each = sa.func.json_each(col).table_valued("value")
    return sa.select(sa.literal(1)).select_from(each).where(each.c.value == value).exists()


def _array_is_empty(col: Sql, dialect: str) -> Sql:
    if dialect == "postgresql":
        array = sa.func.jsonb_typeof(col) == "array"
        length = sa.case((array, sa.func.jsonb_array_length(col)), else_=0)
        return sa.or_(col.is_(None), length == 0)
    return sa.or_(col.is_(None), sa.func.coalesce(sa.func.json_array_length(col), 0) == 0)


# --- running ---------------------------------------------------------------------------------


def select_page(
    conn: sa.Connection,
    *,
    target: QueryTarget,
    query: ListQuery,
    now: datetime,
    timezone: tzinfo = UTC,
    extra_conditions: Sequence[Sql] = (),
) -> sa.Select[Any]:
    """The SELECT of one page (limit + 1 rows, to know whether another page follows)."""
    builder = _Compiler(conn, target, now, timezone)
    where = builder.where(query, extra_conditions)
    if query.after is not None:
        where.append(builder.after(query.sort, query.after))
    # Keys from joined tables ride along under a label; main-table keys are in the row already.
    keys = [
        builder.column(key.ref).label(f"_k{i}")
        for i, key in enumerate(query.sort)
        if key.ref.via is not None
    ]
    statement = sa.select(target.main, *keys).select_from(builder.source()).where(*where)
    return statement.order_by(*builder.order(query.sort)).limit(query.limit + 1)


def fetch_page(
    conn: sa.Connection,
    *,
    target: QueryTarget,
    query: ListQuery,
    now: datetime,
    timezone: tzinfo = UTC,
    extra_conditions: Sequence[Sql] = (),
) -> Page:
    """One page of records (as column → value rows) and the cursor of the next, if any."""
    statement = select_page(
        conn,
        target=target,
        query=query,
        now=now,
        timezone=timezone,
        extra_conditions=extra_conditions,
    )
    result = conn.execute(statement)
    names = list(result.keys())
    rows = [dict(zip(names, row, strict=True)) for row in result]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    builder = _Compiler(conn, target, now, timezone)
    sort_names = [
        f"_k{i}" if key.ref.via is not None else builder.column(key.ref).name
        for i, key in enumerate(query.sort)
    ]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor(query, [last[name] for name in sort_names] + [last["id"]])
    if len(names) > len(target.main.c):
        for row in rows:
            for name in names[len(target.main.c) :]:
                del row[name]
    return Page(items=rows, next_cursor=cursor)


def count_records(
    conn: sa.Connection,
    *,
    target: QueryTarget,
    query: ListQuery,
    now: datetime,
    timezone: tzinfo = UTC,
    extra_conditions: Sequence[Sql] = (),
    exact_limit: int = EXACT_COUNT_LIMIT,
) -> RecordCount:
    """How many records match: exact up to `exact_limit`, a planner estimate above (PostgreSQL)."""
    builder = _Compiler(conn, target, now, timezone)
    where = builder.where(query, extra_conditions)
    matching = sa.select(target.main.c.id).select_from(builder.source()).where(*where)
    if conn.dialect.name == "postgresql":
        estimate = _estimate(conn, target, matching, plain=len(where) == 1)
        if estimate > exact_limit:
            return RecordCount(estimate, exact=False)
    total = conn.execute(sa.select(sa.func.count()).select_from(matching.subquery())).scalar()
    return RecordCount(int(total or 0), exact=True)


def _estimate(conn: sa.Connection, target: QueryTarget, matching: Any, *, plain: bool) -> int:
    """Planner rows: `pg_class.reltuples` for an unfiltered list, else EXPLAIN's estimate."""
    if plain:
        found = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
            {"t": f'"{target.main.name}"'},
        ).scalar()
        if found is not None and found >= 0:
            return int(found)
    compiled = matching.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + compiled.string, compiled.params)
    document = plan.scalar()
    data: Any = json.loads(document) if isinstance(document, str) else document
    return int(data[0]["Plan"]["Plan Rows"])


def fetch_kanban(
    conn: sa.Connection,
    *,
    target: QueryTarget,
    query: ListQuery,
    group_by: str,
    now: datetime,
    timezone: tzinfo = UTC,
    extra_conditions: Sequence[Sql] = (),
    per_column: int = KANBAN_PER_COLUMN,
) -> list[KanbanColumn]:
    """Per value of the select field `group_by`: its count and first records in list order.

    The columns are the field's options in order, then values outside them, then blank.
    """
    spec = target.form.fields.get(group_by)
    if not isinstance(spec, f.SelectField):
        error = FieldError("/field", "list.bad-group-by", f"{group_by!r} is not a select field")
        raise ListQueryError([error])
    builder = _Compiler(conn, target, now, timezone)
    where = builder.where(query, extra_conditions)
    group = target.main.c[group_by]
    counts = conn.execute(
        sa.select(group, sa.func.count())
        .select_from(builder.source())
        .where(*where)
        .group_by(group)
    ).all()
    ranked = sa.func.row_number().over(partition_by=group, order_by=builder.order(query.sort))
    inner = (
        sa.select(target.main, ranked.label("_rank")).select_from(builder.source()).where(*where)
    )
    sub = inner.subquery()
    rows = conn.execute(
        sa.select(sub).where(sub.c._rank <= per_column).order_by(sub.c[group_by], sub.c._rank)
    ).mappings()
    items: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        items.setdefault(row[group_by], []).append({k: v for k, v in row.items() if k != "_rank"})
    return _kanban_columns(
        option_keys(target.form, group_by), {row[0]: row[1] for row in counts}, items
    )


def _kanban_columns(
    options: Sequence[str],
    counts: Mapping[str | None, int],
    items: Mapping[str | None, list[dict[str, Any]]],
) -> list[KanbanColumn]:
    extra = sorted(str(key) for key in counts if key is not None and key not in options)
    keys: list[str | None] = [*options, *extra, None]
    return [
        KanbanColumn(key, counts.get(key, 0), items.get(key, []))
        for key in keys
        if key is not None or counts.get(None)
    ]


def option_keys(form: CompiledForm, key: str) -> list[str]:
    """The option keys of a select field: its own options, else the form's named option set."""
    spec: Any = form.fields[key]
    options = list(getattr(spec, "options", ()))
    named = getattr(spec, "option_set", None)
    if not options and named:
        for option_set in getattr(form.spec, "option_sets", ()):
            if option_set.key == named:
                options = list(option_set.options)
    return [str(option.key) for option in options if not option.retired]


__all__ = [
    "EXACT_COUNT_LIMIT",
    "KANBAN_PER_COLUMN",
    "KanbanColumn",
    "Page",
    "QueryTarget",
    "RecordCount",
    "count_records",
    "fetch_kanban",
    "fetch_page",
    "option_keys",
    "query_target",
    "select_page",
]

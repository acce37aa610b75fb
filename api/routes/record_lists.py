"""Record lists over HTTP: filtered, sorted, searched cursor pages, counts and kanban columns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from time import monotonic
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import DatabaseDep
from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import FieldError, NotFoundError
from engine.forms.listing import ListQuery, ListQueryError, build_list_query
from engine.forms.record_access import Who, check_lookups, form_accesses, read_scope
from engine.forms.record_json import record_to_json
from engine.forms.views import ViewSpec
from engine.identity.actor import Actor
from engine.identity.permissions import (
    FormAccess,
    require,
    require_visible_fields,
    require_visible_query,
)
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage import UnitOfWork
from engine.storage.form_queries import (
    EXACT_COUNT_LIMIT,
    QueryTarget,
    count_records,
    fetch_kanban,
    fetch_page,
    query_target,
)
from engine.storage.form_records import (
    SYSTEM_FIELDS,
    FormRecordStore,
    RecordLayout,
    build_record_layout,
)
from engine.storage.permission_sql import field_of_column
from engine.storage.sqltypes import utc_now

router = APIRouter(tags=["records"])
BASE = "/apps/{app}/forms/{form}/records"
# A published change reaches lists within this delay; it saves two queries per list request.
FRESH_SECONDS = 1.0
_SYSTEM_OUT = ("id", "version", "created_at", "created_by", "updated_at", "updated_by")


class CountOut(BaseModel):
    value: int
    exact: bool


class RecordPageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    count: CountOut | None


class KanbanColumnOut(BaseModel):
    value: str | None
    count: int
    items: list[dict[str, Any]]


class KanbanOut(BaseModel):
    field: str
    columns: list[KanbanColumnOut]


FilterParam = Annotated[str | None, Query(description="Filter tree as JSON (docs/lists.md)")]
ExprParam = Annotated[str | None, Query(max_length=4000, description="Expression filter")]
SortParam = Annotated[str | None, Query(description="Keys, `-` for descending: -priority,id")]
SearchParam = Annotated[str | None, Query(description="Full-text search")]
ViewParam = Annotated[str | None, Query(description="A saved view's key")]
TzParam = Annotated[str | None, Query(description="IANA zone for relative dates (UTC)")]


def _registry(request: Request) -> DefinitionRegistry:
    """The app's registry (the records routes' own, when they made one first)."""
    state = request.app.state
    if getattr(state, "registry", None) is None:
        state.registry = DefinitionRegistry()
    registry: DefinitionRegistry = state.registry
    return registry


@dataclass(frozen=True, slots=True)
class _Listing:
    """A form's query tables and record layout (to read a page's records), once per version."""

    target: QueryTarget
    definition: FormDefinition
    layout: RecordLayout


def _recent(request: Request, app: str, form: str) -> FormDefinition | None:
    """The form as read less than `FRESH_SECONDS` ago: lists skip the registry's check then."""
    cache = getattr(request.app.state, "list_recent", None) or {}
    found = cache.get((app, form))
    if found is None or found[0] < monotonic():
        return None
    definition: FormDefinition = found[1]
    return definition


def _remember(request: Request, definition: FormDefinition) -> None:
    state = request.app.state
    cache = getattr(state, "list_recent", None) or {}
    cache[(definition.app, definition.key)] = (monotonic() + FRESH_SECONDS, definition)
    state.list_recent = cache


def _listing(request: Request, definition: FormDefinition) -> _Listing:
    state = request.app.state
    cache: dict[tuple[str, str, str], _Listing] = getattr(state, "list_targets", None) or {}
    state.list_targets = cache
    key = (definition.app, definition.key, definition.fingerprint)
    if key not in cache:
        target = query_target(app=definition.app, form=definition.compiled, forms=definition.forms)
        layout = build_record_layout(
            app=definition.app, form=definition.compiled, forms=definition.forms
        )
        cache[key] = _Listing(target, definition, layout)
    return cache[key]


def _bad(path: str, code: str, message: str) -> ListQueryError:
    return ListQueryError([FieldError(loc=path, code=code, message=message)])


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise _bad("/tz", "list.bad-timezone", f"unknown time zone {name!r}") from err


def _filter(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise _bad("/filter", "list.bad-filter", "the filter is not valid JSON") from err


def _view(uow: UnitOfWork, app: str, form: str, key: str | None) -> ViewSpec | None:
    if key is None:
        return None
    try:
        body = uow.definitions.get_current(app=app, kind="views", key=key).body
    except NotFoundError as err:
        raise NotFoundError(f"app {app!r} has no view {key!r}", code="list.unknown-view") from err
    view = ViewSpec.model_validate(body)
    if view.form != form:
        raise _bad("/view", "list.view-form-mismatch", f"view {key!r} lists form {view.form!r}")
    return view


def _merge_filter(view: ViewSpec | None, requested: Any) -> Any:
    """A request filter narrows the view's filter (both must hold)."""
    if view is None or view.filter is None:
        return requested
    return view.filter if requested is None else {"and": [view.filter, requested]}


def _merge_expr(view: ViewSpec | None, requested: str | None) -> str | None:
    if view is None or view.filter_expr is None:
        return requested
    return view.filter_expr if requested is None else f"({view.filter_expr}) AND ({requested})"


@dataclass(frozen=True, slots=True)
class _Scope:
    """The actor's access to the listed form, and the read scope's conditions."""

    access: FormAccess
    conditions: list[Any]

    @property
    def exact_limit(self) -> int:
        # A scoped count is exact: the planner's estimate covers the whole table.
        return 10**9 if self.conditions else EXACT_COUNT_LIMIT


class _Request:
    """The list request of one call, read and checked against the form and the actor."""

    def __init__(
        self, request: Request, conn: sa.Connection, app: str, form: str, actor: Actor
    ) -> None:
        self.request, self.conn, self.app, self.form = request, conn, app, form
        self.actor = actor

    def scope(self, target: QueryTarget, query: ListQuery, now: datetime) -> _Scope:
        """Refuse a list the actor may not read, or a filter or sort on hidden fields."""
        forms = [self.form, *target.related]
        with UnitOfWork(self.conn) as uow:
            accesses = form_accesses(uow=uow, who=self.actor, app=self.app, forms=forms)
        access = accesses[self.form]
        targets = {form: accesses[form] for form in target.related}
        require(access, "read")
        require_visible_query(access, query, targets=targets)
        conditions = read_scope(self.conn, access, target.main, who=self.actor, now=now)
        return _Scope(access, conditions)

    def load(self, params: dict[str, Any]) -> tuple[_Listing, QueryTarget, ListQuery, Any]:
        definition = _recent(self.request, self.app, self.form)
        view = None
        if definition is None or params.get("view") is not None:
            with UnitOfWork(self.conn) as uow:
                definition = _registry(self.request).form(uow, app=self.app, key=self.form)
                view = _view(uow, self.app, self.form, params.get("view"))
            _remember(self.request, definition)
        sort = params.get("sort")
        keys = [k for k in sort.split(",") if k] if sort else list(view.sort if view else ())
        limit = params.get("limit") or (view.page_size if view else None)
        query = build_list_query(
            definition.compiled,
            forms=definition.forms,
            filter=_merge_filter(view, _filter(params.get("filter"))),
            filter_expr=_merge_expr(view, params.get("filter_expr")),
            sort=keys,
            search=params.get("q"),
            limit=limit,
            cursor=params.get("cursor"),
            trash=bool(params.get("trash")),
        )
        listing = _listing(self.request, definition)
        return listing, listing.target, query, view


def _searchable(target: QueryTarget, access: FormAccess) -> QueryTarget:
    """The target searching only the columns of fields the actor can see."""
    searched = tuple(c for c in target.searched if not access.is_hidden(field_of_column(c)))
    return target if searched == target.searched else replace(target, searched=searched)


@router.get(BASE, response_model=RecordPageOut, responses=problem_responses(400, 404, 422))
def list_records(
    request: Request,
    db: DatabaseDep,
    actor: RequiredActorDep,
    app: str,
    form: str,
    filter: FilterParam = None,
    filter_expr: ExprParam = None,
    sort: SortParam = None,
    q: SearchParam = None,
    cursor: str | None = None,
    limit: Annotated[int | None, Query()] = None,
    view: ViewParam = None,
    trash: bool = False,
    count: bool = True,
    tz: TzParam = None,
) -> JSONResponse:
    """A page of records, the cursor of the next page, and how many records match."""
    params: dict[str, Any] = {"filter": filter, "filter_expr": filter_expr, "sort": sort, "q": q}
    params |= {"cursor": cursor, "limit": limit, "view": view, "trash": trash}
    zone = _zone(tz)
    now = utc_now()
    with db.connect() as conn:
        reader = _Request(request, conn, app, form, actor)
        listing, target, query, saved = reader.load(params)
        scope = reader.scope(target, query, now)
        target = _searchable(target, scope.access)
        page = fetch_page(
            conn,
            target=target,
            query=query,
            now=now,
            timezone=zone,
            extra_conditions=scope.conditions,
        )
        total = (
            count_records(
                conn,
                target=target,
                query=query,
                now=now,
                timezone=zone,
                extra_conditions=scope.conditions,
                exact_limit=scope.exact_limit,
            )
            if count
            else None
        )
        columns = saved.columns if saved is not None else ()
        items = records_json(
            conn, listing, [page.items], columns, access=scope.access, who=actor, now=now
        )[0]
    # Items are JSON already (record_to_json): answer without revalidating them (RecordPageOut
    # documents the shape), which costs as much as reading the page.
    body = {
        "items": items,
        "next_cursor": page.next_cursor,
        "count": None if total is None else {"value": total.value, "exact": total.exact},
    }
    return JSONResponse(body)


@router.get(f"{BASE}/count", response_model=CountOut, responses=problem_responses(400, 404, 422))
def count_matching_records(
    request: Request,
    db: DatabaseDep,
    actor: RequiredActorDep,
    app: str,
    form: str,
    filter: FilterParam = None,
    filter_expr: ExprParam = None,
    q: SearchParam = None,
    view: ViewParam = None,
    trash: bool = False,
    tz: TzParam = None,
) -> CountOut:
    """How many records match; `exact` is false for a planner estimate on large tables."""
    params = {"filter": filter, "filter_expr": filter_expr, "q": q, "view": view, "trash": trash}
    zone = _zone(tz)
    now = utc_now()
    with db.connect() as conn:
        reader = _Request(request, conn, app, form, actor)
        _listing_, target, query, _view_spec = reader.load(params)
        scope = reader.scope(target, query, now)
        total = count_records(
            conn,
            target=_searchable(target, scope.access),
            query=query,
            now=now,
            timezone=zone,
            extra_conditions=scope.conditions,
            exact_limit=scope.exact_limit,
        )
    return CountOut(value=total.value, exact=total.exact)


@router.get(f"{BASE}/kanban", response_model=KanbanOut, responses=problem_responses(400, 404, 422))
def kanban(
    request: Request,
    db: DatabaseDep,
    actor: RequiredActorDep,
    app: str,
    form: str,
    field: str | None = None,
    filter: FilterParam = None,
    filter_expr: ExprParam = None,
    sort: SortParam = None,
    q: SearchParam = None,
    view: ViewParam = None,
    per_column: Annotated[int, Query(ge=1, le=200)] = 20,
    tz: TzParam = None,
) -> KanbanOut:
    """Per option of a select field: the count and the first records of the column."""
    params = {"filter": filter, "filter_expr": filter_expr, "sort": sort, "q": q, "view": view}
    zone = _zone(tz)
    now = utc_now()
    with db.connect() as conn:
        reader = _Request(request, conn, app, form, actor)
        listing, target, query, saved = reader.load(params)
        group = field or (saved.group_by if saved is not None else None)
        if group is None:
            raise _bad("/field", "list.bad-group-by", "name a select field to group by")
        scope = reader.scope(target, query, now)
        require_visible_fields(scope.access, [group])
        columns = fetch_kanban(
            conn,
            target=_searchable(target, scope.access),
            query=query,
            group_by=group,
            now=now,
            timezone=zone,
            per_column=per_column,
            extra_conditions=scope.conditions,
        )
        shown = saved.columns if saved is not None else ()
        groups = [column.items for column in columns]
        items = records_json(conn, listing, groups, shown, access=scope.access, who=actor, now=now)
    return KanbanOut(
        field=group,
        columns=[
            KanbanColumnOut(value=column.value, count=column.count, items=found)
            for column, found in zip(columns, items, strict=True)
        ],
    )


def records_json(
    conn: sa.Connection,
    listing: _Listing,
    groups: Sequence[Sequence[Mapping[str, Any]]],
    columns: tuple[str, ...] = (),
    *,
    access: FormAccess | None = None,
    who: Who = None,
    now: datetime | None = None,
) -> list[list[dict[str, Any]]]:
    """The listed rows of each group as record JSON, exactly as GET of one record shows them.

    The page's rows become records through `FormRecordStore.from_rows` (one query for lookups
    and rollups, one per child table) and are serialised by `record_to_json`; a view's
    `columns` keep the system fields and those fields.
    """
    store = FormRecordStore(conn, layout=listing.layout)
    records = store.from_rows([row for rows in groups for row in rows])
    if access is not None:
        when = now or datetime.now(UTC)
        records, access = check_lookups(conn, access, listing.layout, records, who=who, now=when)
    found = {r.id: r for r in records}
    wanted = {name.split(".")[0] for name in columns}
    out: list[list[dict[str, Any]]] = []
    for rows in groups:
        items = []
        for row in rows:
            record = found[int(row["id"])]
            item = record_to_json(listing.definition, record, access=access)
            if wanted:
                item = {k: v for k, v in item.items() if k in SYSTEM_FIELDS or k in wanted}
            items.append(item)
        out.append(items)
    return out


__all__ = ["records_json", "router"]

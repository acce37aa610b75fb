"""Relation pickers: the records a relation field may point at, as the actor may read them.

The candidates are the target form's records in the actor's read scope, searched only on the
fields the actor can see, each with a display label (the target's title field when visible).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.deps import DatabaseDep
from api.routes.records import get_record_service
from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import NotFoundError
from engine.forms.fields import RelationField
from engine.forms.listing import build_list_query
from engine.forms.record_access import form_accesses, read_scope
from engine.identity.permissions import (
    FormAccess,
    require,
    require_visible_fields,
)
from engine.registry import FormDefinition
from engine.storage import UnitOfWork
from engine.storage._fts import search_condition
from engine.storage.form_queries import QueryTarget, fetch_page, query_target
from engine.storage.permission_sql import field_of_column
from engine.storage.sqltypes import utc_now

router = APIRouter(tags=["records"])
NOT_A_RELATION = "record.not-a-relation"
PICKER_LIMIT = 50


class OptionOut(BaseModel):
    id: int
    label: str


class OptionPage(BaseModel):
    form: str
    items: list[OptionOut]
    next_cursor: str | None


@router.get(
    "/apps/{app}/forms/{form}/fields/{field}/options",
    response_model=OptionPage,
    responses=problem_responses(403, 404, 422),
)
def relation_options(
    app: str,
    form: str,
    field: str,
    request: Request,
    db: DatabaseDep,
    actor: RequiredActorDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=PICKER_LIMIT)] = 20,
) -> OptionPage:
    """Records of the relation's target form the actor may read, matching `q`, in id order."""
    service = get_record_service(request)
    source = service.definition(app=app, form=form)
    spec = source.compiled.fields.get(field)
    if not isinstance(spec, RelationField):
        raise NotFoundError(f"{form} has no relation field {field!r}", code=NOT_A_RELATION)
    target_app, _, target_key = str(spec.form).rpartition(".")
    target_app = target_app or app
    target = service.definition(app=target_app, form=target_key)
    with db.connect() as conn:
        with UnitOfWork(conn) as uow:
            accesses = form_accesses(uow=uow, who=actor, app=app, forms=[form])
            accesses |= form_accesses(uow=uow, who=actor, app=target_app, forms=[target_key])
        source_access, access = accesses[form], accesses[target_key]
        require(source_access, "read")
        require_visible_fields(source_access, [field])
        require(access, "read")
        query = build_list_query(
            target.compiled, forms=target.forms, search=q, limit=limit, cursor=cursor
        )
        found = _target(request, target, access)
        now = utc_now()
        conditions = read_scope(conn, access, found.main, who=actor, now=now)
        if q is not None and found.searched != _target(request, target, None).searched:
            # SQLite's FTS table indexes every searched column, hidden ones too: match the
            # visible columns again so a hidden value never selects a record.
            conditions.append(search_condition(conn, found.main, found.searched, q, index=None))
        page = fetch_page(conn, target=found, query=query, now=now, extra_conditions=conditions)
    title = _title(target, access)
    return OptionPage(
        form=f"{target_app}.{target_key}",
        items=[OptionOut(id=row["id"], label=_label(row, title)) for row in page.items],
        next_cursor=page.next_cursor,
    )


def _target(request: Request, definition: FormDefinition, access: FormAccess | None) -> QueryTarget:
    """The target's query tables, searching only columns of fields the actor can see."""
    cache: dict[tuple[str, str, str], QueryTarget] = (
        getattr(request.app.state, "picker_targets", None) or {}
    )
    request.app.state.picker_targets = cache
    key = (definition.app, definition.key, definition.fingerprint)
    if key not in cache:
        cache[key] = query_target(
            app=definition.app, form=definition.compiled, forms=definition.forms
        )
    found = cache[key]
    if access is None:
        return found
    searched = tuple(c for c in found.searched if not access.is_hidden(field_of_column(c)))
    return found if searched == found.searched else replace(found, searched=searched)


def _title(definition: FormDefinition, access: FormAccess) -> str | None:
    key = definition.compiled.spec.title_field
    return None if key is None or access.is_hidden(key) else str(key)


def _label(row: dict[str, Any], title: str | None) -> str:
    value = row.get(title) if title is not None else None
    return f"#{row['id']}" if value in (None, "") else str(value)


__all__ = ["NOT_A_RELATION", "OptionOut", "OptionPage", "router"]

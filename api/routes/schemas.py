"""JSON Schemas of every definition kind, for editors and CI to validate packs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.schemas import problem_responses
from engine.errors import NotFoundError
from engine.schemas import KINDS, schema_for

router = APIRouter(tags=["definitions"])


@router.get("/schemas")
def list_schemas() -> dict[str, list[str]]:
    """The kinds that have a schema."""
    return {"kinds": list(KINDS)}


@router.get("/schemas/{kind}", responses=problem_responses(404))
def read_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one definition kind (bundle, form, flow, report, …)."""
    if kind not in KINDS:
        raise NotFoundError(f"no schema for kind {kind!r}", code="schema.unknown-kind")
    return schema_for(kind)

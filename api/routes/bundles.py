"""Template packs over HTTP: plan or apply an import from a zip, export an installed app."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import DatabaseDep, SettingsDep
from api.errors import PayloadTooLarge
from api.schemas import problem_responses
from engine.bundles import load_bundle, zip_bundle
from engine.installer import export_app, import_bundle, list_apps

router = APIRouter(tags=["bundles"])


class PlanItemOut(BaseModel):
    kind: str
    key: str
    action: str
    changes: list[str]


class ImportPlanOut(BaseModel):
    app: str
    version_from: str | None
    version_to: str
    noop: bool
    applied: bool
    items: list[PlanItemOut]


class AppOut(BaseModel):
    key: str
    name: Any
    version: str


async def _read_zip(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the upload exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _plan_out(plan: Any, *, applied: bool) -> ImportPlanOut:
    return ImportPlanOut(
        app=plan.app,
        version_from=plan.version_from,
        version_to=plan.version_to,
        noop=plan.is_noop,
        applied=applied and not plan.is_noop,
        items=[
            PlanItemOut(kind=i.kind, key=i.key, action=i.action, changes=list(i.changes))
            for i in plan.items
        ],
    )


async def _import(request: Request, db: Any, settings: Any, *, dry_run: bool) -> ImportPlanOut:
    data = await _read_zip(request, settings.max_upload_bytes)
    bundle = await run_in_threadpool(load_bundle, data)
    plan = await run_in_threadpool(lambda: import_bundle(db=db, bundle=bundle, dry_run=dry_run))
    return _plan_out(plan, applied=not dry_run)


@router.post(
    "/bundles/plan",
    response_model=ImportPlanOut,
    responses=problem_responses(413, 422),
    openapi_extra={
        "requestBody": {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def plan_bundle_import(
    request: Request, db: DatabaseDep, settings: SettingsDep
) -> ImportPlanOut:
    """Validate a bundle and show what importing it would change; nothing is written."""
    return await _import(request, db, settings, dry_run=True)


@router.post(
    "/bundles/import",
    response_model=ImportPlanOut,
    responses=problem_responses(413, 422, 409),
    openapi_extra={
        "requestBody": {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def apply_bundle_import(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    dry_run: Annotated[bool, Query(description="Stop after the plan")] = False,
) -> ImportPlanOut:
    """Import a bundle in one transaction; a second import of the same pack is a no-op."""
    return await _import(request, db, settings, dry_run=dry_run)


@router.get("/apps", response_model=list[AppOut])
def read_apps(db: DatabaseDep) -> list[AppOut]:
    """The installed apps."""
    return [AppOut(key=a.key, name=a.name, version=a.version) for a in list_apps(db=db)]


@router.get(
    "/apps/{app}/export",
    responses={200: {"content": {"application/zip": {}}}, **problem_responses(404)},
    response_class=Response,
)
def export_bundle(app: str, db: DatabaseDep) -> Response:
    """Export an installed app as a canonical bundle zip."""
    data = zip_bundle(export_app(db=db, app=app))
    headers = {"Content-Disposition": f'attachment; filename="{app}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)

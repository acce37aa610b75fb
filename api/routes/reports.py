"""Reports and dashboards over HTTP: run a report or an ad-hoc query, run a whole dashboard
(widgets concurrently), export a report as CSV or XLSX (streamed, export permission).

Every run goes through the per-process result cache keyed by the data versions of the forms
it reads (docs/dashboards.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, JsonValue

from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import FieldError
from engine.forms.transfer_service import ExportFile
from engine.registry import DefinitionRegistry
from engine.reports.cache import ResultCache
from engine.reports.dashboard import Click
from engine.reports.dashboard_service import DashboardService
from engine.reports.export import export_report
from engine.reports.query import FilterClause, Operator, ReportQueryError
from engine.reports.service import ReportService, Run
from engine.reports.spec import ReportSpec
from engine.storage.uow import UnitOfWork

router = APIRouter(tags=["reports"])

APP = "/apps/{app}"
BAD_FILTER = "report.bad-filter"


class FilterIn(BaseModel):
    field: str = Field(max_length=200, examples=["region"])
    op: Operator = "eq"
    value: JsonValue = None

    def clause(self) -> FilterClause:
        return FilterClause(self.field, self.op, self.value)


class RunIn(BaseModel):
    filters: list[FilterIn] = Field(default_factory=list, max_length=50)
    drill: dict[str, JsonValue] | None = Field(
        None, description="Dimension key -> the clicked value"
    )
    timezone: str | None = Field(None, max_length=64, examples=["Asia/Shanghai"])
    limit: int | None = Field(None, ge=1, le=100_000)


class QueryIn(RunIn):
    report: dict[str, JsonValue] = Field(description="A report definition (ReportSpec)")


class ClickIn(BaseModel):
    widget: str = Field(max_length=64)
    value: JsonValue


class DrillIn(BaseModel):
    path: list[JsonValue] = Field(default_factory=list, max_length=10)
    by: str | None = Field(
        None, max_length=200, description="A card's breakdown field, one of its drill_down"
    )


class DashboardRunIn(BaseModel):
    filters: dict[str, JsonValue] = Field(
        default_factory=dict, description="Global filter key -> value"
    )
    clicks: list[ClickIn] = Field(default_factory=list, max_length=20)
    drill: dict[str, list[JsonValue] | DrillIn] = Field(
        default_factory=dict,
        description="Widget key -> values clicked down its drill path, or {path, by} (a card: "
        "[card, week, value] and the breakdown field)",
    )
    timezone: str | None = Field(None, max_length=64)


def get_runs(request: Request) -> ReportService:
    """The app's cached report runner, built on first use (sharing the app's registry)."""
    state = request.app.state
    runs = getattr(state, "report_runs", None)
    if runs is None:
        registry = getattr(state, "registry", None) or DefinitionRegistry()
        state.registry = registry
        runs = ReportService(state.db, registry=registry, cache=ResultCache())
        state.report_runs = runs
    return runs


RunsDep = Annotated[ReportService, Depends(get_runs)]


def get_dashboards(request: Request, runs: RunsDep) -> DashboardService:
    """The app's dashboard service (it remembers which dashboard versions passed the check)."""
    state = request.app.state
    service = getattr(state, "dashboards", None)
    if service is None:
        service = DashboardService(runs)
        state.dashboards = service
    return service


DashboardsDep = Annotated[DashboardService, Depends(get_dashboards)]


def _run_of(body: RunIn) -> Run:
    return Run(tuple(f.clause() for f in body.filters), body.drill, body.limit)


@router.post(APP + "/reports/query", responses=problem_responses(403, 404, 422))
def run_query(app: str, body: QueryIn, runs: RunsDep, actor: RequiredActorDep) -> dict[str, Any]:
    """Run a report definition sent in the body (the report designer's preview)."""
    spec = ReportSpec.model_validate(body.report)
    with runs.unit() as uow:
        compiled = runs.compile(uow, app=app, spec=spec, timezone=body.timezone)
        return runs.payload(uow, compiled, actor=actor, run=_run_of(body), timezone=body.timezone)


@router.post(APP + "/reports/{report}/run", responses=problem_responses(403, 404, 422))
def run_report(
    app: str, report: str, body: RunIn, runs: RunsDep, actor: RequiredActorDep
) -> dict[str, Any]:
    """Run an installed report: typed rows, chart options (or pivot), `cached`."""
    with runs.unit() as uow:
        spec = runs.installed(uow, app=app, key=report)
        compiled = runs.compile(uow, app=app, spec=spec, timezone=body.timezone)
        return runs.payload(uow, compiled, actor=actor, run=_run_of(body), timezone=body.timezone)


def _filters_param(raw: str | None) -> list[FilterClause]:
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [FilterIn.model_validate(item).clause() for item in items]
    except (ValueError, TypeError) as err:
        message = 'filters is a JSON list of {"field", "op", "value"}'
        raise ReportQueryError([FieldError("filters", BAD_FILTER, message)]) from err


def _stream(export: ExportFile) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{export.file_name}"'}
    return StreamingResponse(export.chunks, media_type=export.media_type, headers=headers)


@router.get(
    APP + "/reports/{report}/export",
    response_class=StreamingResponse,
    responses=problem_responses(403, 404, 422),
)
def export(
    request: Request,
    app: str,
    report: str,
    runs: RunsDep,
    actor: RequiredActorDep,
    file_format: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
    filters: Annotated[str | None, Query(description="JSON list of filters")] = None,
    timezone: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Every row of the report as CSV or XLSX, streamed (needs the export permission)."""
    exported = export_report(
        runs,
        app=app,
        key=report,
        actor=actor,
        file_format=file_format,
        filters=_filters_param(filters),
        timezone=timezone,
    )
    with UnitOfWork(request.app.state.db) as uow:  # exports are audited, like record exports
        detail = {"format": file_format, "filters": filters}
        uow.audit.record(
            action="report.export",
            target_kind="report",
            target_key=f"{app}.{report}",
            actor=actor.user_id,
            detail=detail,
        )
        uow.commit()
    return _stream(exported)


@router.post(APP + "/dashboards/{dashboard}/run", responses=problem_responses(403, 404, 422))
def run_dashboard(
    app: str,
    dashboard: str,
    body: DashboardRunIn,
    service: DashboardsDep,
    actor: RequiredActorDep,
) -> dict[str, Any]:
    """Every widget of the dashboard, run concurrently with the global filters, clicks and
    drill paths; widgets the actor may not read carry an `error`. At the records level a
    widget's `drill` also holds the records-list and record URLs."""
    paths = {k: v.path if isinstance(v, DrillIn) else v for k, v in body.drill.items()}
    by = {k: v.by for k, v in body.drill.items() if isinstance(v, DrillIn) and v.by}
    payload = service.run(
        app=app,
        key=dashboard,
        actor=actor,
        values=body.filters,
        clicks=[Click(c.widget, c.value) for c in body.clicks],
        drill=paths,
        drill_by=by,
        timezone=body.timezone,
    )
    for widget in payload["widgets"]:
        records = widget.get("drill", {}).get("records")
        if records is not None:
            listing = f"/api/v1/apps/{app}/forms/{records['form']}/records"
            widget["drill"] |= {"list_url": listing, "record_url": listing + "/{id}"}
    return payload


__all__ = ["router"]

"""Dashboards, drill-down, pivots, caching and export end to end on a small installed app
(real SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError, PermissionDenied
from engine.forms.service import RecordService
from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.reports.cache import DataVersionBumper
from engine.reports.dashboard import Click
from engine.reports.dashboard_service import DashboardService
from engine.reports.export import export_report
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.service import ReportService, Run
from engine.storage.uow import UnitOfWork

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)

BUNDLE = {
    "bundle.yaml": "key: dash\nname: Dashboards test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - key: region
    type: select
    options: [{key: east, label: East}, {key: north, label: North}]
  - {key: city, type: text}
  - {key: engineer, type: text}
  - {key: opened_on, type: date}
  - {key: csat, type: number, decimals: 0}
""",
    "forms/note.yaml": "key: note\nlabel: Note\nfields:\n  - {key: text, type: text}\n",
    "roles/viewer.yaml": """
key: viewer
label: Viewer
permissions:
  - {form: ticket, actions: [read], scope: all}
""",
    "roles/blind.yaml": """
key: blind
label: Blind
permissions:
  - {form: ticket, actions: [read, export], scope: all, fields: {csat: hidden}}
""",
    "reports/by_region.yaml": """
key: by_region
label: By region
dataset: {form: ticket}
dimensions: [{key: region, field: region}]
measures:
  - {key: tickets, aggregate: count}
sort: [{by: region}]
chart: {type: column}
""",
    "reports/csat.yaml": """
key: csat
label: CSAT
dataset: {form: ticket}
dimensions: [{key: region, field: region}, {key: city, field: city}]
measures:
  - {key: answered, aggregate: count, filter: NOT ISBLANK(csat)}
  - {key: good, aggregate: count, filter: csat >= 4}
  - {key: rate, expr: good / answered, format: percent}
sort: [{by: region}, {by: city}]
chart: {type: pivot, y: [rate]}
""",
    "reports/weekly.yaml": """
key: weekly
label: Weekly
dataset: {form: ticket}
dimensions: [{key: week, field: opened_on, grain: week}]
measures: [{key: tickets, aggregate: count}]
sort: [{by: week}]
chart: {type: line}
""",
    "reports/total.yaml": """
key: total
label: Total
dataset: {form: ticket}
measures: [{key: tickets, aggregate: count}]
chart: {type: kpi}
""",
    "dashboards/ops.yaml": """
key: ops
label: Operations
refresh_seconds: 60
widgets:
  - {key: map, report: by_region, x: 0, y: 0, w: 12, h: 6, links_to: [trend, kpi],
     drill_down: [city, engineer]}
  - {key: trend, report: weekly, x: 12, y: 0, w: 12, h: 6}
  - {key: kpi, report: total, x: 0, y: 6, w: 6, h: 3}
  - {key: pivot, report: csat, x: 6, y: 6, w: 18, h: 6}
filters:
  - key: period
    label: Period
    type: date_range
    bindings: {map: opened_on, trend: opened_on, kpi: opened_on, pivot: opened_on}
  - key: region
    label: Region
    type: multiselect
    bindings: {trend: region, kpi: region}
""",
    "dashboards/broken.yaml": """
key: broken
label: Broken
widgets:
  - {key: kpi, report: total, x: 0, y: 0, w: 6, h: 3}
filters:
  - {key: f, label: F, type: select, bindings: {kpi: no_such_field}}
""",
}

TICKETS = [
    # region, city, engineer, opened_on, csat
    ("east", "sh", "e1", date(2026, 11, 2), 5),
    ("east", "sh", "e2", date(2026, 11, 3), 2),
    ("east", "hz", "e1", date(2026, 11, 10), 4),
    ("east", "hz", "e3", date(2026, 11, 11), None),
    ("north", "bj", "e4", date(2026, 11, 10), 1),
    ("north", "bj", "e4", date(2026, 10, 1), 5),
]


World = tuple[ReportService, RecordService]


@pytest.fixture
def world(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[World]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = tmp_path / "dash"
    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    registry = DefinitionRegistry()
    records = RecordService(db=migrated_engine, registry=registry, listeners=[DataVersionBumper()])
    for region, city, engineer, opened_on, csat in TICKETS:
        data = {"subject": "s", "region": region, "city": city, "engineer": engineer,
                "opened_on": opened_on.isoformat(), "csat": csat}  # fmt: skip
        records.create(app="dash", form="ticket", data=data, actor=None)
    yield ReportService(migrated_engine, registry=registry, clock=lambda: NOW), records


ADMIN = Actor(user_id=1, username="admin", is_admin=True)


def widgets(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["key"]: w for w in payload["widgets"]}


def run(runs: ReportService, **kwargs: Any) -> dict[str, dict[str, Any]]:
    kwargs.setdefault("actor", ADMIN)
    return widgets(DashboardService(runs).run(app="dash", key="ops", **kwargs))


def test_dashboard_runs_every_widget(world: World) -> None:
    runs, _ = world
    payload = DashboardService(runs).run(app="dash", key="ops", actor=ADMIN)
    assert payload["refresh_seconds"] == 60
    found = widgets(payload)
    assert found["kpi"]["chart"]["value"] == 6
    assert found["map"]["chart"]["xAxis"]["data"] == ["east", "north"]
    assert found["map"]["chart"]["series"][0]["data"] == [4, 2]
    assert found["trend"]["chart_type"] == "line"
    assert found["map"]["layout"] == {"x": 0, "y": 0, "w": 12, "h": 6}


def test_pivot_subtotals_are_ratios_of_the_level(world: World) -> None:
    runs, _ = world
    pivot = run(runs)["pivot"]["chart"]
    assert pivot["kind"] == "pivot"
    rows = {(tuple(r["values"]), r["level"]): r["cells"][0][0] for r in pivot["rows"]}
    assert rows[(("east", "sh"), 2)] == pytest.approx(0.5)
    assert rows[(("east", "hz"), 2)] == pytest.approx(1.0)
    # east: 2 good of 3 answered, not the mean of 0.5 and 1.0
    assert rows[(("east",), 1)] == pytest.approx(2 / 3)
    assert rows[((), 0)] == pytest.approx(3 / 5)


def test_global_filters_apply_to_bound_widgets(world: World) -> None:
    runs, _ = world
    found = run(runs, values={"period": ["2026-11-01", "2026-11-30"], "region": ["north"]})
    assert found["kpi"]["chart"]["value"] == 1
    assert found["map"]["chart"]["series"][0]["data"] == [4, 1]  # region is not bound to it


def test_click_filters_linked_widgets(world: World) -> None:
    runs, _ = world
    found = run(runs, clicks=[Click("map", "north")])
    assert found["kpi"]["chart"]["value"] == 2
    assert found["map"]["chart"]["series"][0]["data"] == [4, 2]


def test_drill_region_city_engineer_records(world: World) -> None:
    runs, _ = world
    found = run(runs, drill={"map": ["east"]})
    assert found["map"]["chart"]["xAxis"]["data"] == ["hz", "sh"]
    found = run(runs, drill={"map": ["east", "hz"]})
    assert found["map"]["chart"]["xAxis"]["data"] == ["e1", "e3"]
    found = run(runs, drill={"map": ["east", "hz", "e3"]})
    records = found["map"]["drill"]["records"]
    assert records["form"] == "ticket"
    assert {"field": "engineer", "op": "eq", "value": "e3"} in records["filter"]["and"]
    assert "chart" not in found["map"]


def test_bad_values_are_refused_with_paths(world: World) -> None:
    runs, _ = world
    with pytest.raises(ReportQueryError) as info:
        run(runs, values={"period": "someday"})
    assert (info.value.code, info.value.errors[0].loc) == (
        "dashboard.bad-filter-value",
        "filters/period",
    )
    with pytest.raises(ReportQueryError) as info:
        run(runs, drill={"map": ["east", "hz", "e3", "x"]})
    assert info.value.code == "dashboard.drill-too-deep"


def test_binding_to_a_missing_field(world: World) -> None:
    runs, _ = world
    with pytest.raises(DefinitionError) as info:
        DashboardService(runs).run(app="dash", key="broken", actor=ADMIN)
    assert [(p.code, p.path) for p in info.value.problems] == [
        ("dashboard.unknown-field", "/filters/0/bindings/kpi")
    ]


def test_second_load_is_cached_until_a_write(world: World) -> None:
    runs, records = world
    run(runs)
    again = run(runs)
    assert all(w["cached"] for w in again.values())
    records.create(app="dash", form="note", data={"text": "x"}, actor=None)
    assert all(w["cached"] for w in run(runs).values())  # another form: nothing invalidated
    records.create(
        app="dash",
        form="ticket",
        data={"subject": "new", "region": "east", "opened_on": "2026-11-20"},
        actor=None,
    )
    after = run(runs)
    assert not any(w["cached"] for w in after.values())
    assert after["kpi"]["chart"]["value"] == 7


def test_cache_is_per_actor_scope(world: World) -> None:
    runs, _ = world
    run(runs)
    viewer = Actor(user_id=5, username="v", roles={"dash": frozenset({"viewer"})})
    assert not run(runs, actor=viewer)["kpi"]["cached"]


def test_widget_hidden_field_is_a_widget_error(world: World) -> None:
    runs, _ = world
    blind = Actor(user_id=6, username="b", roles={"dash": frozenset({"blind"})})
    found = run(runs, actor=blind)
    assert found["pivot"]["error"]["code"] == "identity.hidden-field"
    assert found["kpi"]["chart"]["value"] == 6


def test_no_read_permission(world: World) -> None:
    runs, _ = world
    nobody = Actor(user_id=7, username="n")
    with UnitOfWork(runs.db) as uow:
        spec = runs.installed(uow, app="dash", key="total")
        compiled = runs.compile(uow, app="dash", spec=spec)
        with pytest.raises(PermissionDenied):
            runs.result(uow, compiled, actor=nobody, run=Run())


def _csv(chunks: Iterator[bytes]) -> list[list[str]]:
    text = b"".join(chunks).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_export_csv_and_xlsx(world: World) -> None:
    runs, _ = world
    file = export_report(runs, app="dash", key="by_region", actor=ADMIN, file_format="csv",
                         filters=[FilterClause("city", "eq", "sh")])  # fmt: skip
    assert file.file_name == "by_region.csv"
    assert _csv(file.chunks) == [["region", "tickets"], ["east", "2"]]
    from openpyxl import load_workbook

    file = export_report(runs, app="dash", key="by_region", actor=ADMIN, file_format="xlsx")
    book = load_workbook(io.BytesIO(b"".join(file.chunks)), read_only=True)
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert rows == [["region", "tickets"], ["east", 4], ["north", 2]]


def test_export_needs_the_export_permission(world: World) -> None:
    runs, _ = world
    viewer = Actor(user_id=5, username="v", roles={"dash": frozenset({"viewer"})})
    with pytest.raises(PermissionDenied):
        export_report(runs, app="dash", key="by_region", actor=viewer, file_format="csv")

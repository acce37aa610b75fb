"""Dataset `exists` tests (correlated EXISTS / count / sum over other rows), on each database:
results against hand-written SQL, the other form's read scope and field masks, errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError, PermissionDenied
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, compile_form_access
from engine.identity.spec import RoleSpec
from engine.reports.compiler import CompiledReport, compile_report
from engine.reports.runner import run_report
from engine.reports.spec import ReportSpec

NOW = datetime(2025, 12, 20, tzinfo=UTC)
ACTOR = Actor(user_id=4243, username="analyst")
ALL = {"scope": "all"}
REPEAT = {
    "key": "repeat",
    "form": "ticket",
    "where": 'other.device = device AND other.id <> id AND other.first_resolved_at < created_at'
    ' AND other.first_resolved_at >= DATEADD(created_at, -30, "day")',
}  # fmt: skip


def _compiled(engine: sa.Engine, forms: Mapping[str, Any], **parts: Any) -> CompiledReport:
    body: dict[str, Any] = {"key": "r", "label": "R", "dataset": {"form": "ticket"}}
    body.update(parts)
    spec = ReportSpec.model_validate(body)
    return compile_report(spec, app="aftersales", forms=forms, dialect=engine.dialect.name)


def _access(**permissions: dict[str, Any]) -> dict[str, FormAccess]:
    role = RoleSpec.model_validate({"key": "analyst", "label": "Analyst", "permissions": [
        {"form": form, **grant} for form, grant in permissions.items()]})  # fmt: skip
    keys = ("ticket", "customer", "team", "device", "product_model")
    return {k: compile_form_access(actor=ACTOR, app="aftersales", form=k, roles=[role])
            for k in keys}  # fmt: skip


@pytest.fixture(scope="module")
def db(aftersales_data: sa.Engine) -> Iterator[sa.Connection]:
    with aftersales_data.connect() as conn:
        yield conn


def _hand(db: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sa.text(sql)).all()]


def _days_before(column: str, days: int, dialect: str) -> str:
    if dialect == "postgresql":
        return f"{column} - INTERVAL '{days} days'"
    return f"datetime({column}, '-{days} days') || '.000000'"


def _repeat_sql(dialect: str, *, scope: str = "") -> str:
    low = _days_before("t.created_at", 30, dialect)
    return (
        "EXISTS (SELECT 1 FROM aftersales__ticket o WHERE o.device = t.device AND o.id <> t.id "
        f"AND o.first_resolved_at < t.created_at AND o.first_resolved_at >= {low} "
        f"AND o.deleted_at IS NULL {scope})"
    )


def test_exists_filter_and_measure_equal_hand_sql(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data, forms, dataset={"form": "ticket", "exists": [REPEAT]},
        filters=[{"expr": 'ticket_type = "repair"'}],
        dimensions=[{"key": "region", "field": "region"}],
        measures=[{"key": "n", "aggregate": "count"},
                  {"key": "repeats", "aggregate": "count", "filter": "repeat"}],
    )  # fmt: skip
    rows = run_report(db, compiled, actor=None, now=NOW).rows
    repeat = _repeat_sql(db.dialect.name)
    expected = _hand(db, f"SELECT t.region, COUNT(*), SUM(CASE WHEN {repeat} THEN 1 ELSE 0 END) "
                     "FROM aftersales__ticket t WHERE t.deleted_at IS NULL AND t.ticket_type = "
                     "'repair' GROUP BY t.region ORDER BY t.region")  # fmt: skip
    assert [tuple(row) for row in rows] == expected
    assert 0 < sum(row[2] for row in rows) < sum(row[1] for row in rows)


def test_exists_as_dimension_and_count_and_sum(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    same_device = "other.device = device AND other.id <> id"
    tests = [
        {"key": "others", "form": "ticket", "where": same_device, "result": "count"},
        {"key": "other_hold", "form": "ticket", "where": same_device, "result": "sum",
         "value": "other.hold_bsec"},
        {**REPEAT},
    ]  # fmt: skip
    compiled = _compiled(
        aftersales_data, forms, dataset={"form": "ticket", "exists": tests},
        filters=[{"expr": "NOT(ISBLANK(device))"}],
        dimensions=[{"key": "repeat", "field": "repeat"}],
        measures=[{"key": "n", "aggregate": "count"},
                  {"key": "others", "aggregate": "sum", "field": "others"},
                  {"key": "hold", "aggregate": "sum", "field": "other_hold"}],
    )  # fmt: skip
    rows = run_report(db, compiled, actor=None, now=NOW).rows
    others = "SELECT {} FROM aftersales__ticket o WHERE o.device = t.device AND o.id <> t.id " \
             "AND o.deleted_at IS NULL"  # fmt: skip
    repeat = _repeat_sql(db.dialect.name)
    expected = _hand(db, f"SELECT CASE WHEN {repeat} THEN 1 ELSE 0 END AS r, COUNT(*), "
                     f"SUM(({others.format('COUNT(*)')})), "
                     f"SUM(({others.format('COALESCE(SUM(o.hold_bsec), 0)')})) "
                     "FROM aftersales__ticket t WHERE t.deleted_at IS NULL AND t.device IS NOT "
                     "NULL GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert [(bool(r[0]), r[1], float(r[2]), float(r[3])) for r in expected] == list(rows)


def test_the_other_forms_scope_applies_inside(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    """Scope `region = east` on tickets: the other ticket must be readable too, so a test for
    another ticket of the customer in another region finds none; without scope, many."""
    elsewhere = {"key": "elsewhere", "form": "ticket",
                 "where": "other.customer = customer AND other.region <> region"}  # fmt: skip
    compiled = _compiled(
        aftersales_data, forms, dataset={"form": "ticket", "exists": [elsewhere]},
        dimensions=[{"key": "region", "field": "region"}],
        measures=[{"key": "n", "aggregate": "count"},
                  {"key": "elsewhere", "aggregate": "count", "filter": "elsewhere"}],
        sort=[{"by": "n", "direction": "desc"}], limit=3, others=True,
    )  # fmt: skip
    east = _access(ticket={"scope": "expr", "scope_expr": 'region = "east"'}, customer=ALL)
    scoped = run_report(db, compiled, actor=ACTOR, now=NOW, access=east).rows
    count = _hand(db, "SELECT COUNT(*) FROM aftersales__ticket WHERE region = 'east'")[0][0]
    assert [tuple(row) for row in scoped] == [("east", count, 0)]
    everyone = run_report(db, compiled, actor=None, now=NOW).rows
    assert sum(row[2] for row in everyone) > 0


def test_scope_applies_inside_a_blend_populations_test(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    """The same test key in the report and in a population: each is scoped on its own."""
    elsewhere = {"key": "elsewhere", "form": "ticket",
                 "where": "other.customer = customer AND other.region <> region"}  # fmt: skip
    dataset = {"form": "ticket", "exists": [elsewhere]}
    population = {"key": "again", "dataset": dataset, "fields": {"region": "region"},
                  "measures": [{"key": "again", "aggregate": "count", "filter": "elsewhere"}]}
    compiled = _compiled(
        aftersales_data, forms, dataset=dataset, blend=[population],
        dimensions=[{"key": "region", "field": "region"}],
        measures=[{"key": "elsewhere", "aggregate": "count", "filter": "elsewhere"}],
    )  # fmt: skip
    east = _access(ticket={"scope": "expr", "scope_expr": 'region = "east"'}, customer=ALL)
    rows = run_report(db, compiled, actor=ACTOR, now=NOW, access=east).rows
    assert [tuple(row) for row in rows] == [("east", 0, 0)]
    everyone = run_report(db, compiled, actor=None, now=NOW).rows
    assert all(row[1] == row[2] > 0 for row in everyone)


def test_exists_form_needs_read_and_visible_fields(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    vip = {"key": "vip_peer", "form": "customer",
           "where": 'other.id = customer AND other.tier = "vip"'}  # fmt: skip
    compiled = _compiled(
        aftersales_data,
        forms,
        dataset={"form": "ticket", "exists": [vip]},
        measures=[{"key": "n", "aggregate": "count", "filter": "vip_peer"}],
    )
    assert compiled.forms == {"ticket", "customer"}  # read-checked; cached per data version
    with pytest.raises(PermissionDenied) as caught:
        run_report(db, compiled, actor=ACTOR, now=NOW, access=_access(ticket=ALL))
    assert caught.value.code == "identity.permission-denied"
    hidden = _access(ticket=ALL, customer={"scope": "all", "fields": {"tier": "hidden"}})
    with pytest.raises(PermissionDenied) as caught:
        run_report(db, compiled, actor=ACTOR, now=NOW, access=hidden)
    assert caught.value.code == "identity.hidden-field"
    rows = run_report(db, compiled, actor=ACTOR, now=NOW, access=_access(ticket=ALL, customer=ALL))
    expected = _hand(
        db,
        "SELECT COUNT(*) FROM aftersales__ticket t JOIN aftersales__customer c "
        "ON c.id = t.customer WHERE c.tier = 'vip' AND t.deleted_at IS NULL",
    )
    assert rows.rows == ((expected[0][0],),)


@pytest.mark.parametrize(
    ("test", "path", "code"),
    [
        ({"form": "nope", "where": "TRUE"}, "/dataset/exists/0/form", "report.unknown-field"),
        ({"where": "other.nope = device"}, "/dataset/exists/0/where", "report.unknown-field"),
        ({"where": "nope = other.device"}, "/dataset/exists/0/where", "report.unknown-field"),
        ({"where": "other.device"}, "/dataset/exists/0/where", "report.bad-expr"),
        ({"where": "other.created_at > NOW()"}, "/dataset/exists/0/where", "report.bad-expr"),
        ({"where": "other.device = device AND"}, "/dataset/exists/0/where", "report.bad-expr"),
        ({"key": "priority"}, "/dataset/exists/0/key", "report.duplicate-key"),
        ({"result": "sum", "value": "other.subject"}, "/dataset/exists/0/value",
         "report.bad-expr"),
        ({"joins": [{"relation": "tags"}]}, "/dataset/exists/0/joins/0", "report.bad-join"),
    ],
)  # fmt: skip
def test_errors_have_paths(forms: Any, test: dict[str, Any], path: str, code: str) -> None:
    body = {"key": "t", "form": "ticket", "where": "other.device = device", **test}
    spec = ReportSpec.model_validate(
        {
            "key": "r",
            "label": "R",
            "dataset": {"form": "ticket", "exists": [body]},
            "measures": [{"key": "n", "aggregate": "count"}],
        }
    )
    with pytest.raises(DefinitionError) as caught:
        compile_report(spec, app="aftersales", forms=forms, dialect="sqlite")
    assert [(p.code, p.path) for p in caught.value.problems] == [(code, path)]


def test_sum_needs_a_value() -> None:
    with pytest.raises(ValueError, match="report.bad-exists|value"):
        ReportSpec.model_validate(
            {
                "key": "r",
                "label": "R",
                "dataset": {
                    "form": "ticket",
                    "exists": [{"key": "t", "form": "ticket", "where": "TRUE", "result": "sum"}],
                },
            }
        )

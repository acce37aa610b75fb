"""Blended reports: a second population's measures joined to the report's groups, one
statement, on each database (the records test bundle "rec": tickets and customers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import DefinitionError, PermissionDenied
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, compile_form_access
from engine.identity.spec import RoleSpec
from engine.reports.compiler import compile_report
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.runner import run_report
from engine.reports.spec import ReportSpec
from engine.storage.form_tables import form_tables

NOW = datetime(2025, 6, 1, tzinfo=UTC)
ACTOR = Actor(user_id=4242, username="analyst")
CUSTOMERS: dict[str, Any] = {
    "key": "cust",
    "dataset": {"form": "customer"},
    "fields": {"customer.name": "name", "status": None},
    "measures": [{"key": "customers", "aggregate": "count"}],
}
BY_CUSTOMER: dict[str, Any] = {
    "dimensions": [{"key": "customer", "field": "customer.name"}],
    "measures": [
        {"key": "tickets", "aggregate": "count"},
        {"key": "hours", "aggregate": "sum", "field": "hours"},
        {"key": "per_customer", "expr": "tickets / customers"},
    ],
    "blend": [CUSTOMERS],
}


@pytest.fixture
def rec(records_app: str, records_bundle_dir: Path, migrated_engine: sa.Engine) -> dict[str, Any]:
    forms = dict(load_bundle(records_bundle_dir).definitions["forms"])
    tables = {k: form_tables(app="rec", form=s, related_forms=list(forms.values()))
              for k, s in forms.items()}  # fmt: skip
    stamp = {"created_at": NOW, "updated_at": NOW, "version": 1}
    customers = [(1, "Acme"), (2, "Globex"), (3, "Initech")]  # Initech: no ticket
    tickets = [(10, "open", 1, 2), (11, "closed", 1, 3), (12, "open", 2, 5), (13, "open", None, 1)]
    with migrated_engine.begin() as conn:
        conn.execute(
            tables["customer"].main.insert(),
            [{**stamp, "id": i, "name": name} for i, name in customers],
        )
        conn.execute(
            tables["ticket"].main.insert(),
            [
                {**stamp, "id": i, "subject": "s", "status": status, "customer": c, "hours": h}
                for i, status, c, h in tickets
            ],  # fmt: skip
        )
    return forms


def _compile(engine: sa.Engine, forms: dict[str, Any], **parts: Any) -> Any:
    body: dict[str, Any] = {"key": "r", "label": "R", "dataset": {"form": "ticket"}}
    body.update(parts)
    spec = ReportSpec.model_validate(body)
    return compile_report(spec, app="rec", forms=forms, dialect=engine.dialect.name)


def _run(engine: sa.Engine, forms: dict[str, Any], **parts: Any) -> tuple[tuple[Any, ...], ...]:
    filters = parts.pop("extra_filters", ())
    access = parts.pop("access", None)
    compiled = _compile(engine, forms, **parts)
    actor = ACTOR if access is not None else None
    with engine.connect() as conn:
        result = run_report(
            conn, compiled, actor=actor, now=NOW, extra_filters=filters, access=access
        )
    return result.rows


def _problems(engine: sa.Engine, forms: dict[str, Any], **parts: Any) -> set[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        _compile(engine, forms, **parts)
    return {(p.code, p.path) for p in caught.value.problems}


def test_groups_of_either_population(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    # columns: the dimension, the report's measures, then each population's
    rows = _run(migrated_engine, rec, **BY_CUSTOMER)
    assert rows == (
        ("Acme", 2, 5.0, 2.0, 1),
        ("Globex", 1, 5.0, 1.0, 1),
        ("Initech", 0, None, 0.0, 1),  # only among the customers
        (None, 1, 1.0, None, 0),  # only among the tickets; 1 / 0 is blank
    )


def test_one_statement(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        if args[2].lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(args[2])

    sa.event.listen(migrated_engine, "before_cursor_execute", seen)
    try:
        _run(migrated_engine, rec, **BY_CUSTOMER)
    finally:
        sa.event.remove(migrated_engine, "before_cursor_execute", seen)
    assert len(statements) == 1


def test_request_filters_follow_the_fields_map(
    rec: dict[str, Any], migrated_engine: sa.Engine
) -> None:
    acme = [FilterClause("customer.name", "in", ["Acme", "Initech"])]
    rows = _run(migrated_engine, rec, extra_filters=acme, **BY_CUSTOMER)
    assert rows == (("Acme", 2, 5.0, 2.0, 1), ("Initech", 0, None, 0.0, 1))
    # status is mapped to null: the customers have none, the filter skips them
    open_only = [FilterClause("status", "eq", "open")]
    rows = _run(migrated_engine, rec, extra_filters=open_only, **BY_CUSTOMER)
    assert rows[:2] == (("Acme", 1, 2.0, 1.0, 1), ("Globex", 1, 5.0, 1.0, 1))
    # hours is not in the map at all: refused rather than dropped
    with pytest.raises(ReportQueryError) as caught:
        _run(migrated_engine, rec, extra_filters=[FilterClause("hours", "gte", 1)], **BY_CUSTOMER)
    assert caught.value.code == "report.blend-unmapped"
    assert caught.value.errors[0].loc == "/filters/0/field"


def test_a_dimension_mapped_to_null_repeats_the_totals(
    rec: dict[str, Any], migrated_engine: sa.Engine
) -> None:
    everyone = {**CUSTOMERS, "fields": {"customer.name": None}}
    rows = _run(migrated_engine, rec, **{**BY_CUSTOMER, "blend": [everyone]})
    assert [row[:2] + row[4:] for row in rows] == [
        ("Acme", 2, 3), ("Globex", 1, 3), (None, 1, 3),
    ]  # fmt: skip


def test_card_sort_limit_and_having(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    card = _run(migrated_engine, rec, **{**BY_CUSTOMER, "dimensions": []})
    assert card == ((4, 11.0, pytest.approx(4 / 3), 3),)
    top = _run(
        migrated_engine, rec, **BY_CUSTOMER, sort=[{"by": "per_customer", "direction": "desc"}],
        limit=2, filters=[{"expr": "per_customer >= 1", "stage": "having"}],
    )  # fmt: skip
    assert top == (("Acme", 2, 5.0, 2.0, 1), ("Globex", 1, 5.0, 1.0, 1))


def test_grains_apply_to_both_populations(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    rows = _run(
        migrated_engine, rec,
        dimensions=[{"key": "month", "field": "created_at", "grain": "month"}],
        measures=[{"key": "tickets", "aggregate": "count"}],
        blend=[{**CUSTOMERS, "fields": {"created_at": "created_at"}}],
    )  # fmt: skip
    assert [(str(r[0]), r[1], r[2]) for r in rows] == [("2025-06-01", 4, 3)]


def _access(**permissions: dict[str, Any]) -> dict[str, FormAccess]:
    role = RoleSpec.model_validate(
        {"key": "analyst", "label": "Analyst",
         "permissions": [{"form": form, **grant} for form, grant in permissions.items()]}
    )  # fmt: skip
    return {k: compile_form_access(actor=ACTOR, app="rec", form=k, roles=[role])
            for k in ("ticket", "customer", "device", "tag")}  # fmt: skip


def test_population_permissions(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    everything = {"scope": "all"}
    rows = _run(migrated_engine, rec, access=_access(ticket=everything, customer=everything),
                **BY_CUSTOMER)  # fmt: skip
    assert len(rows) == 4
    with pytest.raises(PermissionDenied) as caught:
        _run(migrated_engine, rec, access=_access(ticket=everything), **BY_CUSTOMER)
    assert caught.value.code == "identity.permission-denied"
    hidden = {"scope": "all", "fields": {"name": "hidden"}}
    with pytest.raises(PermissionDenied) as caught:
        _run(migrated_engine, rec, access=_access(ticket=everything, customer=hidden),
             **{**BY_CUSTOMER, "dimensions": [],
                "blend": [{**CUSTOMERS, "filters": [{"expr": 'name <> "x"'}]}]})  # fmt: skip
    assert caught.value.code == "identity.hidden-field"
    # scope own: the actor created no customer, so the population counts none of them
    own = _run(migrated_engine, rec, access=_access(ticket=everything, customer={"scope": "own"}),
               **{**BY_CUSTOMER, "dimensions": []})  # fmt: skip
    assert own == ((4, 11.0, None, 0),)


def test_bad_blends_are_refused_with_paths(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    def blend(**changes: Any) -> dict[str, Any]:
        return {**BY_CUSTOMER, "blend": [{**CUSTOMERS, **changes}]}

    found = _problems(migrated_engine, rec, **blend(fields={"nope": "name"}))
    assert ("report.unknown-field", "/blend/0/fields/nope") in found
    assert ("report.blend-unmapped", "/blend/0/fields") in found  # customer.name not mapped
    found = _problems(migrated_engine, rec, **blend(fields={"customer.name": "nope"}))
    assert found == {("report.unknown-field", "/blend/0/fields/customer.name")}
    found = _problems(migrated_engine, rec, **blend(fields={"customer.name": "id"}))
    assert found == {("report.blend-mismatch", "/blend/0/fields/customer.name")}
    clash = [{"key": "tickets", "aggregate": "count"}]
    found = _problems(migrated_engine, rec, **blend(measures=clash))
    assert found == {("report.duplicate-key", "/blend/0/measures/0/key")}
    calculated = [{"key": "c", "aggregate": "count"}, {"key": "d", "expr": "c * 2"}]
    found = _problems(migrated_engine, rec, **blend(measures=calculated))
    assert found == {("report.blend-unsupported", "/blend/0/measures/1/expr")}
    found = _problems(migrated_engine, rec, **blend(filters=[{"expr": "nope = 1"}]))
    assert found == {("report.unknown-field", "/blend/0/filters/0/expr")}
    found = _problems(migrated_engine, rec, **blend(dataset={"form": "nope"}))
    assert found == {("report.unknown-field", "/blend/0/dataset/form")}
    grain = {
        "dimensions": [{"key": "month", "field": "created_at", "grain": "month"}],
        "measures": [{"key": "tickets", "aggregate": "count"}],
        "blend": [{**CUSTOMERS, "fields": {"created_at": "name"}}],
    }
    found = _problems(migrated_engine, rec, **grain)
    assert found == {("report.grain-not-date", "/blend/0/fields/created_at")}
    found = _problems(migrated_engine, rec, **BY_CUSTOMER, limit=1, others=True)
    assert found == {("report.blend-unsupported", "/others")}
    found = _problems(migrated_engine, rec, **{**BY_CUSTOMER, "blend": [CUSTOMERS, CUSTOMERS]})
    assert ("report.duplicate-key", "/blend/1/key") in found


def test_compare_and_drill(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    dated = {**CUSTOMERS, "fields": {**CUSTOMERS["fields"], "created_at": "created_at"}}
    compiled = _compile(migrated_engine, rec, **{**BY_CUSTOMER, "blend": [dated]},
                        compare="previous_period")  # fmt: skip
    june = [FilterClause("created_at", "between", ["2025-06-01", "2025-06-30"])]
    with migrated_engine.connect() as conn:
        result = run_report(conn, compiled, actor=None, now=NOW, extra_filters=june)
        drilled = run_report(conn, compiled, actor=None, now=NOW, drill={"customer": "Initech"})
    assert len(result.rows) == 4 and result.compare == ()  # nothing in May, in either
    assert drilled.rows == (("Initech", 0, None, 0.0, 1),)

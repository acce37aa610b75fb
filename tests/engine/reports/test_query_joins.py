"""Datasets joined along a subform and relations (the records test bundle "rec")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import DefinitionError
from engine.reports.compiler import compile_report
from engine.reports.runner import run_report
from engine.reports.spec import ReportSpec
from engine.storage.form_tables import form_tables

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def rec(records_app: str, records_bundle_dir: Path, migrated_engine: sa.Engine) -> dict[str, Any]:
    forms = dict(load_bundle(records_bundle_dir).definitions["forms"])
    tables = {k: form_tables(app="rec", form=s, related_forms=list(forms.values()))
              for k, s in forms.items()}  # fmt: skip
    stamp = {"created_at": NOW, "updated_at": NOW, "version": 1}
    with migrated_engine.begin() as conn:
        conn.execute(
            tables["customer"].main.insert(),
            [{**stamp, "id": 1, "name": "Acme"}, {**stamp, "id": 2, "name": "Globex"}],
        )
        conn.execute(
            tables["ticket"].main.insert(),
            [
                {**stamp, "id": 10, "subject": "a", "status": "open", "customer": 1, "hours": 2},
                {**stamp, "id": 11, "subject": "b", "status": "closed", "customer": 1, "hours": 3},
                {**stamp, "id": 12, "subject": "c", "status": "open", "customer": 2, "hours": 5},
                {
                    **stamp,
                    "id": 13,
                    "subject": "d",
                    "status": "open",
                    "customer": None,
                    "hours": None,
                },
            ],
        )
        items = tables["ticket"].children["items"]
        conn.execute(
            items.insert(),
            [
                {"parent_id": 10, "position": 0, "sku": "X", "qty": 1},
                {"parent_id": 10, "position": 1, "sku": "Y", "qty": 4},
                {"parent_id": 12, "position": 0, "sku": "X", "qty": 7},
            ],
        )
    return forms


def _run(engine: sa.Engine, forms: dict[str, Any], **parts: Any) -> tuple[tuple[Any, ...], ...]:
    body: dict[str, Any] = {"key": "r", "label": "R", "dataset": {"form": "ticket"}}
    body.update(parts)
    spec = ReportSpec.model_validate(body)
    compiled = compile_report(spec, app="rec", forms=forms, dialect=engine.dialect.name)
    with engine.connect() as conn:
        return run_report(conn, compiled, actor=None, now=NOW).rows


def test_subform_rows_join(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    rows = _run(
        migrated_engine, rec,
        dataset={"form": "ticket", "joins": [{"relation": "items", "alias": "line"}]},
        dimensions=[{"key": "sku", "field": "line.sku"}],
        measures=[{"key": "qty", "aggregate": "sum", "field": "line.qty"},
                  {"key": "tickets", "aggregate": "count_distinct", "field": "id"}],
    )  # fmt: skip
    assert rows == (("X", 8.0, 2), ("Y", 4.0, 1), (None, None, 2))
    inner = _run(
        migrated_engine, rec,
        dataset={"form": "ticket", "joins": [{"relation": "items", "kind": "inner"}]},
        measures=[{"key": "lines", "aggregate": "count"}],
    )  # fmt: skip
    assert inner == ((3,),)


def test_relation_lookup_and_alias(rec: dict[str, Any], migrated_engine: sa.Engine) -> None:
    rows = _run(
        migrated_engine, rec,
        dataset={"form": "ticket", "joins": [{"relation": "customer", "alias": "c",
                                              "kind": "inner"}]},
        dimensions=[{"key": "name", "field": "c.name"},
                    {"key": "lookup", "field": "customer_name"}],
        measures=[{"key": "hours", "aggregate": "sum", "field": "hours"}],
    )  # fmt: skip
    assert rows == (("Acme", "Acme", 5.0), ("Globex", "Globex", 5.0))


def test_multiple_relations_are_not_joinable(rec: dict[str, Any]) -> None:
    spec = ReportSpec.model_validate({"key": "r", "label": "R", "dataset": {
        "form": "ticket", "joins": [{"relation": "tags"}]}})  # fmt: skip
    with pytest.raises(DefinitionError) as caught:
        compile_report(spec, app="rec", forms=rec, dialect="sqlite")
    assert caught.value.problems[0].code == "report.bad-join"

"""compile_report without a database: every bad report gets a clear error code and a path."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import DefinitionError
from engine.reports.compiler import compile_report
from engine.reports.spec import ReportSpec
from engine.reports.statement import build_statement

DIALECTS = ["sqlite", "postgresql"]


def _spec(**parts: Any) -> ReportSpec:
    body: dict[str, Any] = {"key": "r", "label": "R", "dataset": {"form": "ticket"}}
    body.update(parts)
    return ReportSpec.model_validate(body)


def _problems(forms: Mapping[str, Any], dialect: str, **parts: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        compile_report(_spec(**parts), app="aftersales", forms=forms, dialect=dialect)
    return [(p.code, p.path) for p in caught.value.problems]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_fields_have_paths(forms: Mapping[str, Any], dialect: str) -> None:
    problems = _problems(
        forms,
        dialect,
        dimensions=[{"key": "a", "field": "priority"}, {"key": "b", "field": "no_such"}],
        measures=[{"key": "n", "aggregate": "sum", "field": "customer.nope"}],
        filters=[{"expr": 'ghost = "x"'}],
    )
    assert problems == [
        ("report.unknown-field", "/dimensions/1/field"),
        ("report.unknown-field", "/measures/0/field"),
        ("report.unknown-field", "/filters/0/expr"),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_measures_over_text_are_refused(forms: Mapping[str, Any], dialect: str) -> None:
    problems = _problems(
        forms,
        dialect,
        measures=[
            {"key": "s", "aggregate": "sum", "field": "subject"},
            {"key": "a", "aggregate": "avg", "field": "priority"},
            {"key": "m", "aggregate": "median", "field": "customer.name"},
            {"key": "x", "aggregate": "max", "field": "region"},
        ],
    )
    assert [code for code, _ in problems] == ["report.not-aggregatable"] * 4
    assert problems[0][1] == "/measures/0/aggregate"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_grain_and_buckets_need_the_right_type(forms: Mapping[str, Any], dialect: str) -> None:
    problems = _problems(
        forms,
        dialect,
        dimensions=[
            {"key": "m", "field": "priority", "grain": "month"},
            {"key": "b", "field": "channel", "buckets": [1, 2]},
            {"key": "c", "field": "frt_bsec", "buckets": [10, 5]},
        ],
    )
    assert problems == [
        ("report.grain-not-date", "/dimensions/0/grain"),
        ("report.buckets-not-number", "/dimensions/1/buckets"),
        ("report.buckets-not-number", "/dimensions/2/buckets"),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_keys_sort_joins_and_expressions(forms: Mapping[str, Any], dialect: str) -> None:
    problems = _problems(
        forms,
        dialect,
        dimensions=[{"key": "n", "field": "priority"}],
        measures=[{"key": "n", "aggregate": "count"}, {"key": "r", "expr": "n / "}],
        sort=[{"by": "missing"}],
    )
    assert ("report.duplicate-key", "/measures/0/key") in problems
    assert ("report.bad-expr", "/measures/1/expr") in problems
    joins = _problems(
        forms, dialect, dataset={"form": "ticket", "joins": [{"relation": "subject"}]}
    )
    assert joins == [("report.bad-join", "/dataset/joins/0")]
    sort = _problems(
        forms, dialect, measures=[{"key": "n", "aggregate": "count"}], sort=[{"by": "x"}]
    )
    assert sort == [("report.unknown-key", "/sort/0/by")]
    form = _problems(forms, dialect, dataset={"form": "nothing"})
    assert form == [("report.unknown-field", "/dataset/form")]


def test_time_zones(forms: Mapping[str, Any]) -> None:
    assert _problems(forms, "sqlite", timezone="Mars/Olympus") == [
        ("report.bad-timezone", "/timezone")
    ]
    # daylight saving needs PostgreSQL's zone database
    assert _problems(forms, "sqlite", timezone="Europe/Berlin") == [
        ("report.timezone-unsupported", "/timezone")
    ]
    spec = _spec(timezone="Europe/Berlin")
    assert compile_report(spec, app="aftersales", forms=forms, dialect="postgresql").zone.key == (
        "Europe/Berlin"
    )
    fixed = compile_report(_spec(), app="aftersales", forms=forms, dialect="sqlite",
                           timezone="Asia/Shanghai")  # fmt: skip
    assert fixed.zone.key == "Asia/Shanghai"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_injection_strings_are_bound_parameters(forms: Mapping[str, Any], dialect: str) -> None:
    evil = "x'; DROP TABLE aftersales__ticket; --"
    spec = _spec(
        dimensions=[{"key": "p", "field": "priority"}],
        measures=[{"key": "n", "aggregate": "count", "filter": f'subject = "{evil}"'}],
        filters=[{"expr": f'region <> "{evil}"'}],
    )
    compiled = compile_report(spec, app="aftersales", forms=forms, dialect=dialect)
    statement = build_statement(compiled, now=datetime(2025, 1, 1, tzinfo=UTC))
    sql = statement.compile(dialect=postgresql.dialect() if dialect == "postgresql" else
                            sqlite.dialect())  # fmt: skip
    assert "DROP" not in str(sql)
    assert evil in sql.params.values()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_one_statement_with_joins_and_lookups(forms: Mapping[str, Any], dialect: str) -> None:
    spec = _spec(
        dataset={"form": "ticket", "joins": [{"relation": "device", "alias": "dev"}]},
        dimensions=[
            {"key": "line", "field": "product_line"},  # a lookup through product_model
            {"key": "batch", "field": "dev.batch_no"},
            {"key": "model", "field": "dev.product_model.code"},
        ],
        measures=[{"key": "n", "aggregate": "count_distinct", "field": "device"}],
    )
    compiled = compile_report(spec, app="aftersales", forms=forms, dialect=dialect)
    assert [c.key for c in compiled.columns] == ["line", "batch", "model", "n"]
    assert compiled.forms == {"ticket", "device", "product_model"}
    assert ("device", "batch_no") in compiled.reads()
    assert ("product_model", "product_line") in compiled.reads()

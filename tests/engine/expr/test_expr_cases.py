"""The shared case table (tests/expr_cases.yaml) through Python, SQLite and PostgreSQL.

Results are normalised explicitly before comparison: numbers to Decimal rounded to 9 places
(SQLite computes in binary floating point), datetimes to aware UTC (SQLite hands back naive
UTC text, PostgreSQL a zone-aware value), dates to `date`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from engine.expr import FUNCTIONS, ExpressionError, ExprType, check, compile_sql, evaluate, parse

CASES_FILE = Path(__file__).resolve().parents[2] / "expr_cases.yaml"
DEFAULT_NOW = "2026-03-15T09:30:00Z"
PLACES = Decimal("1e-9")


@dataclass(frozen=True)
class Case:
    index: int
    expr: str
    fields: dict[str, ExprType] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    now: datetime = datetime.fromisoformat(DEFAULT_NOW)
    timezone: ZoneInfo | None = None
    type: ExprType | None = None
    result: Any = None
    error: str | None = None
    column: int | None = None
    only: str | None = None

    @property
    def id(self) -> str:
        return f"{self.index:03d}:{self.expr[:60]}"


def _typed(value: Any, kind: ExprType) -> Any:
    """A YAML value as the Python value of a field of type `kind`."""
    if value is None:
        return None
    if kind.kind == "number":
        return Decimal(str(value))
    if kind.kind == "date":
        return date.fromisoformat(value)
    if kind.kind == "datetime":
        return datetime.fromisoformat(value).astimezone(UTC)
    if kind.kind == "time":
        return time.fromisoformat(value)
    if kind.kind == "list":
        return [_typed(item, kind.item) for item in value] if kind.item else list(value)
    return value


def _load() -> list[Case]:
    raw = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]
    cases = []
    for index, item in enumerate(raw):
        fields = {name: ExprType.from_name(t) for name, t in (item.get("fields") or {}).items()}
        values = {name: _typed(v, fields[name]) for name, v in (item.get("values") or {}).items()}
        cases.append(
            Case(
                index=index,
                expr=item["expr"],
                fields=fields,
                values=values,
                now=datetime.fromisoformat(item.get("now", DEFAULT_NOW)),
                timezone=ZoneInfo(item["timezone"]) if "timezone" in item else None,
                type=ExprType.from_name(item["type"]) if "type" in item else None,
                result=item.get("result"),
                error=item.get("error"),
                column=item.get("column"),
                only=item.get("only"),
            )
        )
    return cases


CASES = _load()
VALUE_CASES = [c for c in CASES if c.error is None]
ERROR_CASES = [c for c in CASES if c.error is not None]
SQL_CASES = [c for c in VALUE_CASES if c.only != "python"]


def normalise(value: Any, kind: ExprType) -> Any:
    """An evaluator's result in one comparable form per static type."""
    if value is None:
        return None
    if kind.kind == "number":
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
        return number.quantize(PLACES)
    if kind.kind == "datetime":
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if kind.kind == "boolean":
        return bool(value)
    return value


def expected(case: Case, kind: ExprType) -> Any:
    return normalise(_typed(case.result, kind), kind)


def _clock(case: Case) -> dict[str, Any]:
    return {"now": case.now, "timezone": case.timezone or UTC}


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 150
    assert len({c.expr for c in CASES}) > 200


def test_table_is_language_neutral() -> None:
    # Plain JSON types only (a bare YAML date would arrive as a Python date, not a string).
    raw = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    json.dumps(raw)


def test_table_covers_every_function_and_operator() -> None:
    text = " ".join(c.expr.upper() for c in VALUE_CASES)
    missing = [name for name in FUNCTIONS if f"{name}(" not in text and name != "NOT"]
    assert missing == []
    for operator in ("+", "-", "*", "/", "&", "=", "<>", "!=", "<", "<=", ">", ">=", " IN ("):
        assert operator in text, operator
    assert " NOT IN (" in text and " AND " in text and " OR " in text and "NOT " in text


@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda c: c.id)
def test_python(case: Case) -> None:
    expr = parse(case.expr)
    kind = check(expr, case.fields)
    if case.type is not None:
        assert kind == case.type
    result = evaluate(expr, case.values, **_clock(case))
    assert normalise(result, kind) == expected(case, kind)


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
def test_error(case: Case) -> None:
    with pytest.raises(ExpressionError) as info:
        check(parse(case.expr), case.fields)
    assert info.value.code == case.error
    if case.column is not None:
        assert info.value.column == case.column
    assert f"column {info.value.column}" in info.value.message


_SQL_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "text": sa.Text(),
    "number": sa.Numeric(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "datetime": sa.DateTime(timezone=True),
    "time": sa.Time(),
}


def run_sql(conn: sa.Connection, case: Case) -> Any:
    """Put the case's values in a temporary typed table and SELECT the compiled expression."""
    columns: dict[str, sa.ColumnElement[Any]] = {}
    table = None
    if case.fields:
        metadata = sa.MetaData()
        table = sa.Table(
            "expr_case",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            *(
                sa.Column(f"c{i}", _SQL_TYPES[kind.kind])
                for i, kind in enumerate(case.fields.values())
            ),
            prefixes=["TEMPORARY"],
        )
        metadata.create_all(conn)
        row = {f"c{i}": case.values.get(name) for i, name in enumerate(case.fields)}
        conn.execute(table.insert().values(id=1, **row))
        columns = {name: table.c[f"c{i}"] for i, name in enumerate(case.fields)}
    compiled = compile_sql(parse(case.expr), columns, dialect=conn.dialect.name, **_clock(case))
    statement = sa.select(compiled)
    if table is not None:
        statement = statement.select_from(table)
    return conn.execute(statement).scalar_one()


@pytest.mark.parametrize("case", SQL_CASES, ids=lambda c: c.id)
def test_sql(db_engine: sa.Engine, case: Case) -> None:
    kind = check(parse(case.expr), case.fields)
    with db_engine.connect() as conn, conn.begin() as transaction:
        result = run_sql(conn, case)
        transaction.rollback()
    assert normalise(result, kind) == expected(case, kind)


SQL_ERROR_CASES = [c for c in ERROR_CASES if all(t.kind in _SQL_TYPES for t in c.fields.values())]


@pytest.mark.parametrize("case", SQL_ERROR_CASES, ids=lambda c: c.id)
def test_sql_error(case: Case) -> None:
    columns = {name: sa.column(name, _SQL_TYPES[t.kind]) for name, t in case.fields.items()}
    with pytest.raises(ExpressionError) as info:
        compile_sql(parse(case.expr), columns, dialect="postgresql", now=case.now)
    assert info.value.code == case.error

"""The SQL compiler: bound parameters only, the registry, agreement with Python over many rows."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.expr import FUNCTIONS, ExpressionError, compile_filter, compile_sql, evaluate, parse
from engine.expr.sql import SQL_FUNCTIONS

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
NASTY = "x'); DROP TABLE users; --"


def _table() -> sa.Table:
    return sa.Table(
        "expr_rows",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("priority", sa.Text),
        sa.Column("ticket_type", sa.Text),
        sa.Column("amount", sa.Numeric),
        sa.Column("score", sa.Float),
        sa.Column("vip", sa.Boolean),
        sa.Column("due", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        prefixes=["TEMPORARY"],
    )


def test_every_function_has_a_sql_implementation() -> None:
    assert set(SQL_FUNCTIONS) == set(FUNCTIONS)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_values_are_bound_never_inlined(dialect: sa.Dialect) -> None:
    table = _table()
    columns = {c.name: c for c in table.columns}
    text = f'priority = "{NASTY.replace(chr(39), chr(92) + chr(39))}" OR CONTAINS(ticket_type, "%")'
    compiled = compile_sql(parse(text), columns, dialect=dialect.name, now=NOW)
    statement = sa.select(table.c.id).where(compiled).compile(dialect=dialect)
    assert "DROP" not in str(statement) and "%'" not in str(statement)
    assert NASTY in statement.params.values()


def test_the_clock_is_a_bound_parameter() -> None:
    compiled = compile_sql(parse("TODAY()"), {}, dialect="postgresql", now=NOW)
    statement = sa.select(compiled).compile(dialect=postgresql.dialect())
    assert date(2026, 3, 15) in statement.params.values()
    assert "now()" not in str(statement).lower() and "current_" not in str(statement).lower()


def test_unknown_dialect_and_unknown_column() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_sql(parse("1"), {}, dialect="oracle", now=NOW)
    assert info.value.code == "expr.unsupported-dialect"
    with pytest.raises(ExpressionError) as info:
        compile_sql(parse("missing = 1"), {}, dialect="sqlite", now=NOW)
    assert info.value.code == "expr.unknown-field"


def _rows(count: int) -> list[dict[str, Any]]:
    """Deterministic rows with blanks, month ends and leap days sprinkled in."""
    rng = random.Random(20260315)
    start = datetime(2023, 12, 25, tzinfo=UTC)
    rows = []
    for i in range(1, count + 1):
        created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 500))
        due = date(2024, rng.randrange(1, 13), 1) + timedelta(days=rng.choice([-1, 0, 27, 28]))
        rows.append(
            {
                "id": i,
                "priority": rng.choice(["urgent", "high", "normal", "", None]),
                "ticket_type": rng.choice(["repair", "tech_support", "Return", "维修", None]),
                "amount": rng.choice([None, Decimal(rng.randrange(-500, 5000)) / 4]),
                "score": rng.choice([None, rng.random() * 10]),
                "vip": rng.choice([True, False, None]),
                "due": rng.choice([due, None]),
                "created_at": rng.choice([created, created.replace(microsecond=123456), None]),
            }
        )
    return rows


AGREEMENT = [
    'ticket_type in ("repair", "tech_support") AND priority = "urgent"',
    'NOT (ticket_type not in ("repair")) OR vip',
    'IF(priority = "urgent", DATEADD(created_at, 4, "hour"), DATEADD(created_at, 24, "hour"))',
    'IFS(DATEDIF(created_at, $now, "hour") >= 48, "late", vip, "vip", TRUE, "ok")',
    'DATEADD(due, 1, "month")',
    'DATEADD(due, -13, "month") < DATEADD(created_at, 0, "day")',
    'DATEDIF(due, created_at, "month")',
    'DATEDIF(created_at, due, "year")',
    'DATEDIF(due, TODAY(), "week")',
    "ROUND(amount / 3, 2)",
    "amount / score > 1",
    "MAX(amount, score, 0)",
    'CONTAINS(ticket_type, "RE") OR STARTSWITH(priority, "U")',
    "LEN(ticket_type & priority) + WEEKDAY(due) + MONTH(created_at)",
    "ISBLANK(priority) OR due = DATE(YEAR(due), MONTH(due), 1)",
    'COALESCE(priority, ticket_type, "none") & "/" & UPPER(ticket_type)',
]


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(repr(value) if isinstance(value, float) else value).quantize(Decimal("1e-6"))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _run_on_rows(
    engine: sa.Engine, rows: list[dict[str, Any]], query: Callable[[sa.Table, str], Any]
) -> list[Any]:
    """Load `rows` into a temporary table, run `query(table, dialect)`, roll everything back."""
    table = _table()
    with engine.connect() as conn, conn.begin() as transaction:
        table.metadata.create_all(conn)
        conn.execute(table.insert(), rows)
        result = list(conn.execute(query(table, conn.dialect.name)).all())
        transaction.rollback()
    return result


@pytest.mark.parametrize("text", AGREEMENT)
def test_sql_agrees_with_python_over_many_rows(db_engine: sa.Engine, text: str) -> None:
    rows = _rows(300)
    expr = parse(text)

    def query(table: sa.Table, dialect: str) -> Any:
        columns = {c.name: c for c in table.columns}
        compiled = compile_sql(expr, columns, dialect=dialect, now=NOW)
        return sa.select(table.c.id, compiled).order_by(table.c.id)

    got = dict(_run_on_rows(db_engine, rows, query))
    for row in rows:
        want = _canonical(evaluate(expr, row, now=NOW))
        assert _canonical(got[row["id"]]) == want, (row, got[row["id"]])


def test_nested_date_arithmetic_cannot_blow_up_the_statement() -> None:
    text = "d"
    for _ in range(40):
        text = f'DATEADD({text}, 1, "month")'
    column = sa.column("d", sa.Date())
    # PostgreSQL's interval arithmetic uses its argument once: the statement grows linearly.
    assert compile_sql(parse(text), {"d": column}, dialect="postgresql", now=NOW) is not None
    # SQLite's clamped month arithmetic repeats its argument, so nesting is capped.
    with pytest.raises(ExpressionError) as info:
        compile_sql(parse(text), {"d": column}, dialect="sqlite", now=NOW)
    assert info.value.code == "expr.too-large"


def test_moderate_nesting_still_compiles() -> None:
    text = 'DATEADD(DATEADD(DATEADD(d, 1, "month"), 1, "month"), 1, "year")'
    column = sa.column("d", sa.Date())
    assert compile_sql(parse(text), {"d": column}, dialect="sqlite", now=NOW) is not None


FILTERS = [
    'ticket_type in ("repair", "tech_support") AND priority = "urgent"',
    'priority = "urgent" OR vip',
    'NOT (priority = "urgent") AND ticket_type <> "repair"',
    'OR(ticket_type = "维修", AND(amount > 100, priority in ("high", BLANK())))',
    'priority = BLANK() OR ticket_type not in ("repair")',
    'IF(vip, priority = "high", ticket_type = "Return")',
    "due = DATE(2024, 3, 1) AND amount = 0",
    "vip",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filters_keep_exactly_the_rows_python_finds_true(db_engine: sa.Engine, text: str) -> None:
    rows = _rows(300)
    expr = parse(text)

    def query(table: sa.Table, dialect: str) -> Any:
        columns = {c.name: c for c in table.columns}
        return sa.select(table.c.id).where(compile_filter(expr, columns, dialect=dialect, now=NOW))

    got = {row.id for row in _run_on_rows(db_engine, rows, query)}
    assert got == {row["id"] for row in rows if evaluate(expr, row, now=NOW) is True}


def test_filters_use_plain_comparisons_that_indexes_serve() -> None:
    columns = {c.name: c for c in _table().columns}
    text = 'priority = "urgent" AND ticket_type in ("repair", "x")'
    condition = compile_filter(parse(text), columns, dialect="postgresql", now=NOW)
    sql = str(condition.compile(dialect=postgresql.dialect()))
    assert "DISTINCT" not in sql and "coalesce" not in sql.lower() and "COLLATE" not in sql


def test_a_filter_must_be_a_condition() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_filter(
            parse("amount + 1"),
            {"amount": sa.column("amount", sa.Numeric())},
            dialect="sqlite",
            now=NOW,
        )
    assert info.value.code == "expr.type-mismatch"

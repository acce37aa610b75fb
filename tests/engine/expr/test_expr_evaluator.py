"""The Python evaluator: input normalisation, reference lookup, clock injection, bounded work."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.expr import ExpressionError, evaluate, parse
from engine.expr.evaluator import MAX_TEXT_CHARS

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


def run(text: str, **values: object) -> object:
    return evaluate(parse(text), values, now=NOW)


@pytest.mark.parametrize("number", [3, 3.0, Decimal("3"), Decimal("3.000")])
def test_numbers_arrive_as_int_float_or_decimal(number: object) -> None:
    assert run("n * 1.1", n=number) == Decimal("3.3")


def test_floats_go_through_their_shortest_repr() -> None:
    assert run("n + m", n=0.1, m=0.2) == Decimal("0.3")


def test_numbers_come_out_as_decimal() -> None:
    assert isinstance(run("LEN('abc')"), Decimal)
    assert isinstance(run("DATEDIF(a, b, 'day')", a=date(2024, 1, 1), b=date(2024, 2, 1)), Decimal)


def test_wrong_value_kinds_are_type_errors_at_the_node() -> None:
    with pytest.raises(ExpressionError) as info:
        run("1 + n", n="seven")
    assert info.value.code == "expr.type-mismatch" and info.value.column == 3
    with pytest.raises(ExpressionError):
        run("n + 1", n=True)


def test_references_use_flat_keys_then_nested_mappings() -> None:
    assert run("customer.tier", **{"customer.tier": "gold"}) == "gold"
    assert run("customer.tier", customer={"tier": "silver"}) == "silver"
    assert run("$user.id", **{"$user": {"id": 7}}) == Decimal(7)
    assert run("customer.tier", customer=None) is None


def test_missing_values_are_blank() -> None:
    assert run("ISBLANK(nothing)") is True
    assert run("nothing + 1") is None


def test_naive_datetimes_are_utc() -> None:
    naive = run("DATEADD(t, 1, 'hour')", t=datetime(2024, 1, 1, 23, 30))
    assert naive == datetime(2024, 1, 2, 0, 30, tzinfo=UTC)
    shanghai = datetime(2024, 1, 2, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert run("t", t=shanghai) == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)


def test_clock_is_injected_and_today_follows_the_timezone() -> None:
    late = datetime(2026, 3, 15, 20, 0, tzinfo=UTC)
    assert evaluate(parse("TODAY()"), {}, now=late) == date(2026, 3, 15)
    in_china = evaluate(parse("TODAY()"), {}, now=late, timezone=ZoneInfo("Asia/Shanghai"))
    assert in_china == date(2026, 3, 16)
    assert evaluate(parse("NOW() = $now"), {}, now=late) is True


def test_concatenating_huge_text_is_refused() -> None:
    big = "x" * 1_000_000
    for text in ("CONCAT(a, b)", "a & b"):
        with pytest.raises(ExpressionError) as info:
            run(text, a=big, b=big)
        assert info.value.code == "expr.too-large"


def test_text_just_under_the_cap_is_fine() -> None:
    half = "y" * (MAX_TEXT_CHARS // 2)
    assert len(str(run("a & b", a=half, b=half))) == MAX_TEXT_CHARS


def test_step_budget() -> None:
    expr = parse(" + ".join(["n"] * 50))
    assert evaluate(expr, {"n": 1}, now=NOW) == Decimal(50)
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, {"n": 1}, now=NOW, max_steps=20)
    assert info.value.code == "expr.budget-exceeded"


def test_short_circuit_saves_steps() -> None:
    expr = parse("IF(TRUE, 1, " + " + ".join(["n"] * 40) + ")")
    assert evaluate(expr, {"n": 1}, now=NOW, max_steps=5) == Decimal(1)


def test_injection_text_is_returned_verbatim() -> None:
    nasty = "'); DROP TABLE users; -- \" \\ %s {0} ${x}"
    assert run("x", x=nasty) == nasty
    assert run("x & ''", x=nasty) == nasty
    assert run("\"__import__('os').system('id')\"") == "__import__('os').system('id')"


def test_the_package_never_calls_eval_or_exec() -> None:
    package = Path(__file__).resolve().parents[3] / "engine" / "expr"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile"}, path


def test_dates_out_of_range_are_reported() -> None:
    with pytest.raises(ExpressionError) as info:
        run('DATEADD(d, 100000000, "day")', d=date(2024, 1, 1))
    assert info.value.code == "expr.out-of-range"


def test_unchecked_bad_units_are_still_refused() -> None:
    with pytest.raises(ExpressionError) as info:
        run("DATEADD(d, 1, u)", d=date(2024, 1, 1), u="fortnight")
    assert info.value.code == "expr.invalid-unit"

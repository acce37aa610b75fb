"""Type checking, references, and the `Problem` form of expression errors."""

from __future__ import annotations

import pytest

from engine.errors import EngineError, Problem
from engine.expr import (
    FUNCTIONS,
    ExpressionError,
    ExprType,
    check,
    parse,
    references,
    to_problem,
)

T = ExprType
CATALOG = {
    "priority": T.TEXT,
    "created_at": T.DATETIME,
    "due": T.DATE,
    "amount": T.NUMBER,
    "customer.tier": T.TEXT,
    "$user.id": T.NUMBER,
    "tags": T.list_of(T.TEXT),
}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('IF(priority = "urgent", DATEADD(created_at, 4, "hour"), created_at)', T.DATETIME),
        ('DATEADD(due, 1, "month")', T.DATE),
        ('DATEADD(due, 1, "hour")', T.DATETIME),
        ('DATEDIF(due, created_at, "day")', T.NUMBER),
        ("due < created_at", T.BOOLEAN),
        ("COALESCE(null, amount)", T.NUMBER),
        ("IF(TRUE, null, null)", T.NULL),
        ("ISBLANK(tags)", T.BOOLEAN),
        ('customer.tier in ("gold", null)', T.BOOLEAN),
    ],
)
def test_types(text: str, kind: ExprType) -> None:
    assert check(parse(text), CATALOG) == kind


def test_any_is_accepted_everywhere() -> None:
    assert check(parse("x + 1"), {"x": T.ANY}) == T.NUMBER
    assert check(parse("IF(x, x, 1)"), {"x": T.ANY}) == T.ANY


def test_references_list_fields_paths_and_variables() -> None:
    expr = parse('IF(customer.tier = "gold", $user.id, amount) + DATEDIF($now, $today, "day")')
    assert references(expr) == frozenset({"customer.tier", "$user.id", "amount"})
    assert references(parse("1 + 2")) == frozenset()


def test_errors_are_engine_errors_with_positions_and_hints() -> None:
    with pytest.raises(ExpressionError) as info:
        check(parse("amount + priorty"), CATALOG)
    err = info.value
    assert isinstance(err, EngineError)
    assert (err.code, err.line, err.column, err.offset) == ("expr.unknown-field", 1, 10, 9)
    assert err.hint is not None and "priority" in err.hint


def test_unknown_function_suggests_a_name() -> None:
    with pytest.raises(ExpressionError) as info:
        check(parse("DATEADDS(due, 1, 'day')"), CATALOG)
    assert info.value.code == "expr.unknown-function"
    assert info.value.hint is not None and "DATEADD" in info.value.hint


def test_to_problem_locates_the_error_in_the_definition() -> None:
    with pytest.raises(ExpressionError) as info:
        check(parse('IF(amount > 1,\n   "a",\n   2)'), CATALOG)
    problem = to_problem(info.value, path="/fields/3/formula", source="forms/ticket.yaml")
    assert isinstance(problem, Problem)
    assert problem.code == "expr.type-mismatch"
    assert problem.where() == "forms/ticket.yaml#/fields/3/formula"
    assert "line 3, column 4" in problem.message


def test_expr_types_parse_their_names() -> None:
    assert T.from_name("list(date)") == T.list_of(T.DATE)
    assert T.from_name("list(date)").name == "list(date)"
    with pytest.raises(ValueError):
        T.from_name("money")
    with pytest.raises(ValueError):
        ExprType("list")


def test_every_function_has_an_arity_and_a_type_rule() -> None:
    assert {"IF", "IFS", "DATEADD", "DATEDIF", "WEEKDAY", "CONTAINS"} <= set(FUNCTIONS)
    for name, function in FUNCTIONS.items():
        assert function.name == name and name == name.upper()
        assert function.max_args is None or function.max_args >= function.min_args

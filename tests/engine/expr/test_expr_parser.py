"""Parsing: node positions, syntax errors that point at the column, and the size caps."""

from __future__ import annotations

from typing import Any

import pytest

from engine.expr import Expression, ExpressionError, parse
from engine.expr.nodes import Binary, Call, Literal, Membership, Node, Ref, Unary
from engine.expr.parser import MAX_DEPTH, MAX_NODES, MAX_TEXT_LENGTH


def test_nodes_carry_line_column_and_offset() -> None:
    expr = parse('IF(a = 1,\n  "x",\n  b)')
    call = expr.root
    assert isinstance(call, Call) and call.name == "IF"
    assert (call.pos.line, call.pos.column, call.pos.offset) == (1, 1, 0)
    text, ref = call.args[1], call.args[2]
    assert isinstance(text, Literal) and (text.pos.line, text.pos.column) == (2, 3)
    assert isinstance(ref, Ref) and (ref.pos.line, ref.pos.column, ref.pos.offset) == (3, 3, 19)


def test_expression_keeps_its_text_and_size() -> None:
    expr = parse("1 + 2")
    assert isinstance(expr, Expression)
    assert expr.text == "1 + 2" and str(expr) == "1 + 2" and expr.node_count == 3


def shape(node: Node) -> Any:
    """A node without positions, to compare trees parsed from different spellings."""
    fields = [getattr(node, name) for name in node.__slots__ if name != "pos"]
    return (type(node).__name__, *(_shape_value(value) for value in fields))


def _shape_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(shape(item) for item in value)
    return shape(value) if hasattr(value, "pos") else value


def test_keywords_and_function_names_are_case_insensitive() -> None:
    lower = parse('if(x in ("a") and not y, true, null) or And(false)').root
    upper = parse('IF(x IN ("a") AND NOT y, TRUE, NULL) OR AND(FALSE)').root
    assert shape(lower) == shape(upper)


def test_not_equal_spellings_agree() -> None:
    a, b = parse("x != 1").root, parse("x <> 1").root
    assert isinstance(a, Binary) and isinstance(b, Binary) and a.op == b.op == "<>"


def test_precedence_follows_excel() -> None:
    root = parse("a & b + 1 = c OR d AND e").root
    assert isinstance(root, Binary) and root.op == "or"
    comparison = parse("a & 1 + 2 = x").root
    assert isinstance(comparison, Binary) and comparison.op == "="
    concat = comparison.left
    assert isinstance(concat, Binary) and concat.op == "&"
    assert isinstance(concat.right, Binary) and concat.right.op == "+"


def test_not_in_and_dotted_paths() -> None:
    root = parse("customer.tier not in ('a', 'b')").root
    assert isinstance(root, Membership) and root.negated
    assert root.operand == Ref("customer.tier", root.operand.pos)
    assert parse("$user.id").root == Ref("$user.id", parse("$user.id").root.pos)


def test_unary_minus_and_not() -> None:
    root = parse("NOT -x > 1").root
    assert isinstance(root, Unary) and root.op == "not"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("1 +", 1, 4),
        ("IF(a,\n  b c)", 2, 5),
        ("price * * 2", 1, 9),
        ("x = 'open", 1, 5),
        ("a @ b", 1, 3),
        ("f(1,,2)", 1, 5),
        ("", 1, 1),
    ],
)
def test_syntax_errors_point_at_the_column(text: str, line: int, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    err = info.value
    assert err.code == "expr.syntax"
    assert (err.line, err.column) == (line, column)
    assert f"line {line}, column {column}" in err.message


def test_bad_escape_points_inside_the_string() -> None:
    with pytest.raises(ExpressionError) as info:
        parse('x = "ok\\z"')
    assert info.value.code == "expr.syntax" and info.value.column == 8


def test_text_length_cap() -> None:
    with pytest.raises(ExpressionError) as info:
        parse('"' + "a" * MAX_TEXT_LENGTH + '"')
    assert info.value.code == "expr.too-large"


def test_depth_cap_rejects_deep_nesting_without_recursing() -> None:
    deep = "-(" * 2000 + "1" + ")" * 2000
    with pytest.raises(ExpressionError) as info:
        parse(deep)
    assert info.value.code == "expr.too-large"
    with pytest.raises(ExpressionError):
        parse("-" * (MAX_DEPTH + 5) + "1")


def test_redundant_parentheses_add_no_depth() -> None:
    assert isinstance(parse("(" * 2000 + "1" + ")" * 2000).root, Literal)


def test_depth_cap_allows_reasonable_nesting() -> None:
    text = "IF(a, " * 30 + "1" + ", 2)" * 30
    assert parse(text).node_count > 60


def test_node_cap() -> None:
    items = ", ".join(str(i) for i in range(MAX_NODES + 1))
    with pytest.raises(ExpressionError) as info:
        parse(f"x in ({items})")
    assert info.value.code == "expr.too-large"


def test_long_flat_chains_hit_the_depth_cap() -> None:
    with pytest.raises(ExpressionError) as info:
        parse(" + ".join(["1"] * (MAX_DEPTH + 5)))
    assert info.value.code == "expr.too-large"

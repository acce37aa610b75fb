"""`check`: static types for an expression against a catalog of reference types; `references`."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.expr.errors import ExpressionError
from engine.expr.functions import FUNCTIONS, expect, unify_all
from engine.expr.nodes import (
    Binary,
    Call,
    Expression,
    Literal,
    Membership,
    Node,
    Ref,
    Unary,
    children,
)
from engine.expr.types import ExprType, unify

T = ExprType
BUILTIN_VARIABLES: Mapping[str, ExprType] = {"$now": T.DATETIME, "$today": T.DATE}
ARITHMETIC = frozenset("+-*/")
EQUALITY = frozenset({"=", "<>"})
ORDERING = frozenset({"<", "<=", ">", ">="})
ORDERABLE = frozenset({"number", "text", "date", "datetime", "time", "null", "any"})


def check(expr: Expression, catalog: Mapping[str, ExprType]) -> ExprType:
    """The type of `expr`, given the types of the names it may reference.

    Raises:
        ExpressionError: `expr.unknown-field`, `expr.unknown-function`, `expr.arity`,
            `expr.type-mismatch` or `expr.invalid-unit`, at the offending node.
    """
    return annotate(expr, catalog)[id(expr.root)]


def annotate(expr: Expression, catalog: Mapping[str, ExprType]) -> dict[int, ExprType]:
    """The type of every node of `expr`, keyed by `id(node)` (used by the SQL compiler)."""
    checker = _Checker(catalog)
    checker.infer(expr.root)
    return checker.types


def references(expr: Expression) -> frozenset[str]:
    """Every name `expr` reads (fields, dotted paths, `$` variables other than $now/$today)."""
    found: set[str] = set()
    stack: list[Node] = [expr.root]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref) and node.name not in BUILTIN_VARIABLES:
            found.add(node.name)
        stack.extend(children(node))
    return frozenset(found)


def _suggest(name: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(options), n=3)
    return f"did you mean {', '.join(close)}?" if close else None


class _Checker:
    def __init__(self, catalog: Mapping[str, ExprType]) -> None:
        self.catalog = catalog
        self.types: dict[int, ExprType] = {}
        self.rules: dict[type, Callable[[Any], ExprType]] = {
            Literal: self._literal,
            Ref: self._ref,
            Unary: self._unary,
            Binary: self._binary,
            Membership: self._membership,
            Call: self._call,
        }

    def infer(self, node: Node) -> ExprType:
        result = self.rules[type(node)](node)
        self.types[id(node)] = result
        return result

    def _literal(self, node: Literal) -> ExprType:
        value = node.value
        if value is None:
            return T.NULL
        if isinstance(value, bool):
            return T.BOOLEAN
        return T.TEXT if isinstance(value, str) else T.NUMBER

    def _ref(self, node: Ref) -> ExprType:
        found = BUILTIN_VARIABLES.get(node.name) or self.catalog.get(node.name)
        if found is None:
            raise ExpressionError.at(
                node.pos,
                f"unknown field {node.name!r}",
                code="expr.unknown-field",
                hint=_suggest(node.name, self.catalog),
            )
        return found

    def _unary(self, node: Unary) -> ExprType:
        operand = self.infer(node.operand)
        if node.op == "-":
            expect(node.operand, operand, T.NUMBER, "the operand of -")
            return T.NUMBER
        expect(node.operand, operand, T.BOOLEAN, "the operand of NOT")
        return T.BOOLEAN

    def _binary(self, node: Binary) -> ExprType:
        left, right = self.infer(node.left), self.infer(node.right)
        op = node.op
        if op in ARITHMETIC or op == "&":
            wanted = T.TEXT if op == "&" else T.NUMBER
            expect(node.left, left, wanted, f"the left side of {op}")
            expect(node.right, right, wanted, f"the right side of {op}")
            return wanted
        if op in ("and", "or"):
            expect(node.left, left, T.BOOLEAN, f"the left side of {op.upper()}")
            expect(node.right, right, T.BOOLEAN, f"the right side of {op.upper()}")
            return T.BOOLEAN
        common = self._common(node, left, right, op)
        if op in ORDERING and common.kind not in ORDERABLE:
            raise ExpressionError.at(
                node.pos, f"{common.name} values cannot be ordered", code="expr.type-mismatch"
            )
        return T.BOOLEAN

    def _common(self, node: Node, left: ExprType, right: ExprType, op: str) -> ExprType:
        common = unify(left, right)
        if common is None:
            raise ExpressionError.at(
                node.pos,
                f"cannot compare {left.name} with {right.name} using {op}",
                code="expr.type-mismatch",
            )
        return common

    def _membership(self, node: Membership) -> ExprType:
        operand = self.infer(node.operand)
        types = [operand] + [self.infer(item) for item in node.items]
        unify_all((node.operand, *node.items), types, "the list after IN", widen=True)
        return T.BOOLEAN

    def _call(self, node: Call) -> ExprType:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise ExpressionError.at(
                node.pos,
                f"unknown function {node.name}",
                code="expr.unknown-function",
                hint=_suggest(node.name, FUNCTIONS),
            )
        function.check_arity(node)
        types = [self.infer(arg) for arg in node.args]
        return function.infer(node, types)


__all__ = ["BUILTIN_VARIABLES", "annotate", "check", "references"]

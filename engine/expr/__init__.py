"""The expression language: parse, type-check, evaluate in Python and compile to SQL.

`compile_sql` lives in `engine.expr.sql`, the only module here that imports SQLAlchemy; it is
imported on first use so that pure layers can use the rest without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.expr.checker import check, references
from engine.expr.errors import ExpressionError, to_problem
from engine.expr.evaluator import evaluate
from engine.expr.functions import FUNCTIONS
from engine.expr.nodes import Expression
from engine.expr.parser import parse
from engine.expr.types import ExprType

if TYPE_CHECKING:
    from engine.expr.sql import compile_filter, compile_sql


def __getattr__(name: str) -> Any:
    if name in ("compile_sql", "compile_filter"):
        from engine.expr import sql

        return getattr(sql, name)
    raise AttributeError(f"module 'engine.expr' has no attribute {name!r}")


__all__ = [
    "FUNCTIONS",
    "ExprType",
    "Expression",
    "ExpressionError",
    "check",
    "compile_filter",
    "compile_sql",
    "evaluate",
    "parse",
    "references",
    "to_problem",
]

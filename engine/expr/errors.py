"""`ExpressionError` for bad expressions and bounded-work breaches, and its `Problem` form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import EngineError, Problem

if TYPE_CHECKING:
    from engine.expr.nodes import Position


class ExpressionError(EngineError):
    """An expression cannot be parsed, type-checked, evaluated or compiled.

    `line` and `column` are 1-based and point into the expression text; `offset` is the
    0-based character offset. The message always names the position.
    """

    code = "expr.invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        line: int = 1,
        column: int = 1,
        offset: int = 0,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{message} (line {line}, column {column})", code=code)
        self.line = line
        self.column = column
        self.offset = offset
        self.hint = hint

    @classmethod
    def at(
        cls, pos: Position, message: str, *, code: str, hint: str | None = None
    ) -> ExpressionError:
        """An error located at a node's position."""
        return cls(
            message, code=code, line=pos.line, column=pos.column, offset=pos.offset, hint=hint
        )


def to_problem(err: ExpressionError, *, path: str, source: str | None = None) -> Problem:
    """The definition `Problem` for `err`, found at `path` (a JSON pointer) in `source`."""
    return Problem(code=err.code, path=path, message=err.message, hint=err.hint, source=source)


__all__ = ["ExpressionError", "to_problem"]

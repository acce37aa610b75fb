"""`parse`: expression text to an `Expression`, with caps on text length, node count and depth.

The lark grammar is loaded on first use. The lark tree is converted without recursion, so a
deeply nested input is rejected with `expr.too-large` instead of exhausting the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from engine.expr.errors import ExpressionError
from engine.expr.nodes import (
    Binary,
    Call,
    Expression,
    Literal,
    Membership,
    Node,
    Position,
    Ref,
    Unary,
)

MAX_TEXT_LENGTH = 8_000
MAX_NODES = 2_000
MAX_DEPTH = 100

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


def parse(text: str) -> Expression:
    """Parse `text` into an `Expression`.

    Raises:
        ExpressionError: `expr.syntax` with the position of the first bad token, or
            `expr.too-large` when a size cap is exceeded.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}",
            code="expr.too-large",
        )
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text) from None
    root, count = _convert(tree)
    return Expression(text=text, root=root, node_count=count)


def _syntax_error(err: UnexpectedInput, text: str) -> ExpressionError:
    line, column = getattr(err, "line", -1), getattr(err, "column", -1)
    offset = getattr(err, "pos_in_stream", None) or 0
    if isinstance(err, UnexpectedEOF) or line in (-1, None):
        return _end_of_input(text)
    if isinstance(err, UnexpectedToken):
        token = err.token
        if token.type == "$END":
            return _end_of_input(text)
        what = f"unexpected {token.value!r}"
        offset = token.start_pos or offset
    elif isinstance(err, UnexpectedCharacters):
        what = f"unexpected character {text[err.pos_in_stream or 0]!r}"
    else:
        what = "syntax error"
    return ExpressionError(what, code="expr.syntax", line=line, column=column, offset=offset)


def _end_of_input(text: str) -> ExpressionError:
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return ExpressionError(
        "unexpected end of expression",
        code="expr.syntax",
        line=line,
        column=column,
        offset=len(text),
    )


def _pos(token: Token) -> Position:
    return Position(line=token.line or 1, column=token.column or 1, offset=token.start_pos or 0)


def _number(token: Token) -> Node:
    return Literal(Decimal(str(token)), _pos(token))


def _string(token: Token) -> Node:
    return Literal(_unescape(str(token)[1:-1], token), _pos(token))


def _unescape(body: str, token: Token) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and len(body) >= i + 6:
            digits = body[i + 2 : i + 6]
            if all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(int(digits, 16)))
                i += 6
                continue
        if nxt not in _ESCAPES:
            column = (token.column or 1) + i + 1
            raise ExpressionError(
                f"unknown escape '\\{nxt}' in text",
                code="expr.syntax",
                line=token.line or 1,
                column=column,
                offset=(token.start_pos or 0) + i + 1,
                hint="use \\\" \\' \\\\ \\n \\t \\r or \\uXXXX",
            )
        out.append(_ESCAPES[nxt])
        i += 2
    return "".join(out)


def _binary(left: Node, op: Token, right: Node) -> Node:
    name = str(op).lower()
    return Binary("<>" if name == "!=" else name, left, right, _pos(op))


def _call(name: Token, args: tuple[Node, ...] | None) -> Node:
    return Call(str(name).upper(), args or (), _pos(name))


def _path(*tokens: Token) -> Node:
    return Ref(".".join(str(t) for t in tokens), _pos(tokens[0]))


_BUILDERS: dict[str, Callable[..., Any]] = {
    "number": _number,
    "string": _string,
    "true": lambda t: Literal(True, _pos(t)),
    "false": lambda t: Literal(False, _pos(t)),
    "null": lambda t: Literal(None, _pos(t)),
    "call": _call,
    "path": _path,
    "arguments": lambda *nodes: tuple(nodes),
    "items": lambda *nodes: tuple(nodes),
    "logical": _binary,
    "compare": _binary,
    "binary": _binary,
    "not_op": lambda op, x: Unary("not", x, _pos(op)),
    "negate": lambda op, x: Unary("-", x, _pos(op)),
    "plus": lambda op, x: x,
    "membership": lambda x, op, items: Membership(x, items, False, _pos(op)),
    "non_membership": lambda x, op, _in, items: Membership(x, items, True, _pos(op)),
}


def _convert(tree: Tree[Token]) -> tuple[Node, int]:
    """Build nodes bottom-up with an explicit stack, enforcing the node and depth caps."""
    built: dict[int, tuple[Any, int]] = {}
    stack: list[tuple[Tree[Token], bool]] = [(tree, False)]
    count = 0
    while stack:
        item, ready = stack.pop()
        subtrees = [c for c in item.children if isinstance(c, Tree)]
        if not ready:
            stack.append((item, True))
            stack.extend((c, False) for c in subtrees)
            continue
        args, depth = [], 0
        for child in item.children:
            if isinstance(child, Tree):
                value, child_depth = built.pop(id(child))
                depth = max(depth, child_depth)
                args.append(value)
            else:
                args.append(child)
        value = _BUILDERS[str(item.data)](*args)
        count += 1
        _check_size(value, count, depth + 1)
        built[id(item)] = (value, depth + 1)
    return built[id(tree)][0], count


def _check_size(value: Any, count: int, depth: int) -> None:
    if count <= MAX_NODES and depth <= MAX_DEPTH:
        return
    pos = value.pos if hasattr(value, "pos") else Position(1, 1, 0)
    limit = f"{MAX_NODES} nodes" if count > MAX_NODES else f"{MAX_DEPTH} levels of nesting"
    raise ExpressionError(
        f"expression is too large: more than {limit}",
        code="expr.too-large",
        line=pos.line,
        column=pos.column,
        offset=pos.offset,
    )


__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_TEXT_LENGTH", "parse"]

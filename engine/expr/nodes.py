"""The syntax tree: frozen nodes, each with its position in the expression text."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts: 1-based line and column, 0-based character offset."""

    line: int
    column: int
    offset: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: text, number (Decimal), boolean, or None for blank."""

    value: str | Decimal | bool | None
    pos: Position


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference: a field key, a dotted path (`customer.tier`) or a variable (`$user.id`)."""

    name: str
    pos: Position


@dataclass(frozen=True, slots=True)
class Unary:
    """`-x` or `NOT x`; `op` is "-" or "not"."""

    op: str
    operand: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Binary:
    """`left op right`; `op` is one of + - * / & = <> < <= > >= and or (`!=` becomes `<>`)."""

    op: str
    left: Node
    right: Node
    pos: Position


@dataclass(frozen=True, slots=True)
class Membership:
    """`operand in (items)`, or `not in` when `negated`."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool
    pos: Position


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; `name` is upper-cased."""

    name: str
    args: tuple[Node, ...]
    pos: Position


Node = Literal | Ref | Unary | Binary | Membership | Call


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: its source text, the root node and its size in nodes."""

    text: str
    root: Node
    node_count: int

    def __str__(self) -> str:
        return self.text


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of `node`, in source order."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Membership):
        return (node.operand, *node.items)
    if isinstance(node, Call):
        return node.args
    return ()


__all__ = [
    "Binary",
    "Call",
    "Expression",
    "Literal",
    "Membership",
    "Node",
    "Position",
    "Ref",
    "Unary",
    "children",
]

"""`ExprType`: the static types of the expression language and how they combine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

SCALAR_KINDS = ("text", "number", "boolean", "date", "datetime", "time", "null", "any")


@dataclass(frozen=True, slots=True)
class ExprType:
    """A type: a scalar kind, or `list` with an item type (`ExprType.list_of(ExprType.TEXT)`)."""

    kind: str
    item: ExprType | None = None

    TEXT: ClassVar[ExprType]
    NUMBER: ClassVar[ExprType]
    BOOLEAN: ClassVar[ExprType]
    DATE: ClassVar[ExprType]
    DATETIME: ClassVar[ExprType]
    TIME: ClassVar[ExprType]
    NULL: ClassVar[ExprType]
    ANY: ClassVar[ExprType]

    def __post_init__(self) -> None:
        if self.kind == "list":
            if self.item is None:
                raise ValueError("a list type needs an item type")
        elif self.kind not in SCALAR_KINDS or self.item is not None:
            raise ValueError(f"unknown expression type {self.kind!r}")

    @classmethod
    def list_of(cls, item: ExprType) -> ExprType:
        return cls("list", item)

    @classmethod
    def from_name(cls, name: str) -> ExprType:
        """Parse `"date"` or `"list(text)"`, the spelling used in catalogs and test tables."""
        name = name.strip()
        if name.startswith("list(") and name.endswith(")"):
            return cls.list_of(cls.from_name(name[5:-1]))
        return cls(name)

    @property
    def name(self) -> str:
        return f"list({self.item.name})" if self.item is not None else self.kind

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "datetime")

    def accepts(self, other: ExprType) -> bool:
        """True when a value of type `other` may stand where `self` is expected."""
        if other.kind in ("null", "any") or self.kind == "any" or self == other:
            return True
        return self.kind == "datetime" and other.kind == "date"

    def __str__(self) -> str:
        return self.name


ExprType.TEXT = ExprType("text")
ExprType.NUMBER = ExprType("number")
ExprType.BOOLEAN = ExprType("boolean")
ExprType.DATE = ExprType("date")
ExprType.DATETIME = ExprType("datetime")
ExprType.TIME = ExprType("time")
ExprType.NULL = ExprType("null")
ExprType.ANY = ExprType("any")


def unify(a: ExprType, b: ExprType) -> ExprType | None:
    """The common type of `a` and `b` (null gives way, date widens to datetime), or None."""
    if a == b or b.kind == "null":
        return a
    if a.kind == "null":
        return b
    if a.kind == "any" or b.kind == "any":
        return ExprType.ANY
    if a.is_temporal and b.is_temporal:
        return ExprType.DATETIME
    return None


__all__ = ["ExprType", "unify"]

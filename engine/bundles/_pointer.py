"""JSON pointers (RFC 6901): the `path` of every problem found in a definition file."""

from __future__ import annotations

from collections.abc import Iterable


def escape_segment(segment: str | int) -> str:
    return str(segment).replace("~", "~0").replace("/", "~1")


def to_pointer(segments: Iterable[str | int]) -> str:
    """`("fields", 3, "type")` → `/fields/3/type`; no segments → `""` (the whole document)."""
    return "".join("/" + escape_segment(s) for s in segments)


__all__ = ["escape_segment", "to_pointer"]

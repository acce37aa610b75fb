"""SQL compilation of expressions (in progress)."""

from __future__ import annotations

from typing import Any


def compile_sql(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


__all__ = ["compile_sql"]

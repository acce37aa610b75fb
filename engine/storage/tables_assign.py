"""Assignment counters and user attributes.

Engine tables on the shared metadata of engine/storage/tables.py."""

from __future__ import annotations

__all__: list[str] = []

"""Durable jobs, outbox deliveries and in-app notifications.

Engine tables on the shared metadata of engine/storage/tables.py."""

from __future__ import annotations

__all__: list[str] = []

"""SLA clocks: one row per record and SLA definition, holding the runtime state as JSON.

The record's own SLA fields are what reports read; this row keeps what they cannot hold (the
cycle, the steps already fired, the jobs scheduled) so job handlers can re-check before acting.

Engine tables on the shared metadata of engine/storage/tables.py."""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime
from engine.storage.tables import KEY, _created_at, metadata

sla_clocks = sa.Table(
    "sla_clocks",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("sla", KEY, nullable=False),
    sa.Column("sla_version", sa.Integer, nullable=False),
    sa.Column("policy", KEY, nullable=False),
    sa.Column("stopped", sa.Boolean, nullable=False),
    sa.Column("state", JSONDocument, nullable=False),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("app", "form", "record_id", "sla"),
)

__all__ = ["sla_clocks"]

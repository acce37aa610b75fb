"""Public form links, tracking tokens and rate limits.

Engine tables on the shared metadata of engine/storage/tables.py. Tracking tokens are secrets:
only their sha256 is stored. Rate counters live here so that every process shares them.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime
from engine.storage.tables import KEY, _created_at, metadata

# One published form: the token is the public address (/p/{token}), not a secret.
public_links = sa.Table(
    "public_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("options", JSONDocument, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_public_links_app_form", "app", "form"),
)

# One record submitted through a link; the submitter holds the token, we keep its hash.
public_tracking = sa.Table(
    "public_tracking",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "link_id",
        sa.Integer,
        sa.ForeignKey("public_links.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    _created_at(),
)

# Fixed-window hit counters: one row per bucket ("client:1.2.3.4", "link:7") and window.
public_rate_counters = sa.Table(
    "public_rate_counters",
    metadata,
    sa.Column("bucket", sa.String(200), primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Index("ix_public_rate_counters_window_start", "window_start"),
)

__all__ = ["public_links", "public_rate_counters", "public_tracking"]

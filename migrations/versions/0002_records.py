"""Record meta tables: history, comments, idempotency keys, autonumber counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported, so this revision never changes under our feet.
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
KEY = sa.String(64)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("app", KEY, nullable=False),
        sa.Column("form", KEY, nullable=False),
        sa.Column("record_id", ROW_ID, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "record_history",
        *_record_columns(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_history"),
    )
    op.create_index("ix_record_history_record", "record_history", ["app", "form", "record_id"])
    op.create_table(
        "record_comments",
        *_record_columns(),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_record_comments"),
    )
    op.create_index("ix_record_comments_record", "record_comments", ["app", "form", "record_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("app", KEY, nullable=False),
        sa.Column("form", KEY, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("record_id", ROW_ID, nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("app", "form", "key", name="uq_idempotency_keys_app_form_key"),
    )
    op.create_table(
        "autonumber_counters",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("app", KEY, nullable=False),
        sa.Column("form", KEY, nullable=False),
        sa.Column("field", KEY, nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_autonumber_counters"),
        sa.UniqueConstraint(
            "app", "form", "field", "period", name="uq_autonumber_counters_app_form_field_period"
        ),
    )


def downgrade() -> None:
    for table in ("autonumber_counters", "idempotency_keys", "record_comments", "record_history"):
        op.drop_table(table)

"""Report data versions and threshold-alert state.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported, so this revision never changes under our feet.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_data_versions",
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("app", "form", name="pk_report_data_versions"),
    )
    op.create_table(
        "report_alert_states",
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("dashboard", sa.String(64), nullable=False),
        sa.Column("alert", sa.String(64), nullable=False),
        sa.Column("firing", sa.Boolean, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("checked_at", TIMESTAMP, nullable=False),
        sa.Column("fired_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("app", "dashboard", "alert", name="pk_report_alert_states"),
    )


def downgrade() -> None:
    op.drop_table("report_alert_states")
    op.drop_table("report_data_versions")

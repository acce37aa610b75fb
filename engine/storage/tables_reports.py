"""Report data versions and threshold-alert state.

Engine tables on the shared metadata of engine/storage/tables.py. A form's data version is
bumped once per writing transaction (engine/reports/cache.py); cached report results are keyed
by the versions of the forms they read, so a write invalidates exactly those results.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import UtcDateTime
from engine.storage.tables import KEY, metadata

# One row per (app, form): writers update it in their own transaction, readers only read it.
report_data_versions = sa.Table(
    "report_data_versions",
    metadata,
    sa.Column("app", KEY, primary_key=True),
    sa.Column("form", KEY, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The last evaluation of each dashboard alert, so a condition that stays true notifies once.
report_alert_states = sa.Table(
    "report_alert_states",
    metadata,
    sa.Column("app", KEY, primary_key=True),
    sa.Column("dashboard", KEY, primary_key=True),
    sa.Column("alert", KEY, primary_key=True),
    sa.Column("firing", sa.Boolean, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("checked_at", UtcDateTime(), nullable=False),
    sa.Column("fired_at", UtcDateTime(), nullable=True),
)

__all__ = ["report_alert_states", "report_data_versions"]

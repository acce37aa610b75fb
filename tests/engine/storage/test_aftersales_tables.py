"""The shipped after-sales forms get their tables, and publishing them again changes nothing."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import yaml

from engine.forms.spec import FormSpec
from engine.storage.form_tables import apply_form_table_plans, describe, plan_form_tables


def _forms(root: Path) -> list[FormSpec]:
    folder = root / "templates" / "aftersales" / "forms"
    return [
        FormSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(folder.glob("*.yaml"))
    ]


def test_aftersales_forms_sync_and_resync(conn: sa.Connection, root: Path) -> None:
    forms = _forms(root)
    plans = plan_form_tables(conn, app="aftersales", forms=forms)
    assert [p.problems for p in plans if p.problems] == []
    apply_form_table_plans(conn, plans)
    tables = set(sa.inspect(conn).get_table_names())
    assert {f"aftersales__{form.key}" for form in forms} <= tables
    again = plan_form_tables(conn, app="aftersales", forms=forms)
    assert [line for plan in again for line in describe(plan)] == []

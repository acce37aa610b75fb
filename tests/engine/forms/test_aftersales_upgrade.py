"""Importing the after-sales bundle over an install from before the field-service forms: the
new forms get their tables, the ticket gets onsite_bsec, and existing tickets are kept."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from engine.bundles import load_bundle
from engine.errors import DefinitionError
from engine.installer import import_bundle
from tests.conftest import ROOT, _clean_committed_data

BUNDLE = ROOT / "templates" / "aftersales"
NEW_FORMS = ("ticket_activity", "field_visit", "part_consumption")
ADDED_TICKET_FIELDS = {"onsite_bsec", "counter_event", "counter_replies", "counter_messages",
                       "counter_transfers", "counter_handle_sec", "counter_parts_cost"}  # fmt: skip


def _previous_release(tmp_path: Path) -> Path:
    """The bundle before the field-service forms: without them, without every definition that
    then fails to load (it names them, or a definition removed before), without onsite_bsec."""
    pack = tmp_path / "aftersales"
    shutil.copytree(BUNDLE, pack)
    for form in NEW_FORMS:
        (pack / "forms" / f"{form}.yaml").unlink()
    _strip_ticket(pack / "forms" / "ticket.yaml")
    for _round in range(10):
        try:
            load_bundle(pack)
            return pack
        except DefinitionError as err:
            for source in {problem.source for problem in err.problems if problem.source}:
                (pack / source).unlink()
    raise AssertionError("the previous release does not load")


def _strip_ticket(ticket: Path) -> None:
    spec = yaml.safe_load(ticket.read_text(encoding="utf-8"))
    spec["fields"] = [f for f in spec["fields"] if f["key"] not in ADDED_TICKET_FIELDS]
    for tab in spec["layout"]["tabs"]:
        tab["sections"] = [s for s in tab["sections"] if s["key"] != "counter_relay"]
        for section in tab["sections"]:
            section["fields"] = [f for f in section["fields"] if str(f) not in ADDED_TICKET_FIELDS]
    ticket.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def db(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    """The migrated database, emptied after the test (the imports commit)."""
    yield migrated_engine
    _clean_committed_data(migrated_engine)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_adds_the_field_service_forms(db: sa.Engine, tmp_path: Path) -> None:
    import_bundle(db=db, bundle=load_bundle(_previous_release(tmp_path)))
    assert "aftersales__field_visit" not in _tables(db)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    with db.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO aftersales__ticket (id, number, subject, description, channel, "
            "ticket_type, status, visit_count, created_at, updated_at, version) VALUES (1, "
            "'WO-1', 's', 'd', 'phone', 'repair', 'new', 0, :now, :now, 1)"),
            {"now": now})  # fmt: skip

    plan = import_bundle(db=db, bundle=load_bundle(BUNDLE))

    assert not plan.is_noop
    tables = _tables(db)
    assert {f"aftersales__{form}" for form in NEW_FORMS} <= tables
    assert "aftersales__field_visit__items" in tables
    columns = {c["name"] for c in sa.inspect(db).get_columns("aftersales__ticket")}
    assert ADDED_TICKET_FIELDS <= columns
    with db.connect() as conn:
        kept = conn.execute(sa.text("SELECT number, onsite_bsec FROM aftersales__ticket")).all()
    assert [tuple(row) for row in kept] == [("WO-1", None)]
    assert import_bundle(db=db, bundle=load_bundle(BUNDLE)).is_noop

"""Importing bundles into a real database: plan, apply in one transaction, no-op, export."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.bundles import definition_digest, load_bundle
from engine.errors import ConflictError, DefinitionError
from engine.installer import export_app, import_bundle
from engine.storage import UnitOfWork

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bundles" / "service_desk"
AFTERSALES = Path(__file__).resolve().parents[2] / "templates" / "aftersales"

UowFactory = Callable[[], UnitOfWork]


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A private copy of the service-desk fixture that a test may edit."""
    target = tmp_path / "service_desk"
    shutil.copytree(FIXTURE, target)
    return target


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _columns(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


def _actions(plan: object) -> dict[tuple[str, str], str]:
    return {(i.kind, i.key): i.action for i in plan.items}  # type: ignore[attr-defined]


def test_import_creates_definitions_tables_and_audit(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path
) -> None:
    plan = import_bundle(db=migrated_engine, bundle=load_bundle(pack))

    actions = _actions(plan)
    assert actions[("app", "service_desk")] == "create"
    assert actions[("forms", "ticket")] == "create"
    assert actions[("tables", "service_desk__ticket")] == "create"
    assert actions[("files", "data/option_sets.yaml")] == "create"
    assert {"service_desk__ticket", "service_desk__customer"} <= _tables(migrated_engine)
    assert {"subject", "hours", "cost", "total"} <= _columns(
        migrated_engine, "service_desk__ticket"
    )
    with uow_factory() as uow:
        versions = uow.definitions.list_versions(app="service_desk", kind="forms", key="ticket")
        assert [v.version for v in versions] == [1]
        assert [e.action for e in uow.audit.query(action="bundle.import")] == ["bundle.import"]


def test_second_import_is_a_noop(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path
) -> None:
    bundle = load_bundle(pack)
    import_bundle(db=migrated_engine, bundle=bundle)

    again = import_bundle(db=migrated_engine, bundle=load_bundle(pack))

    assert again.is_noop
    assert again.version_from == again.version_to == "1.2.0-beta.1"
    with uow_factory() as uow:
        assert len(uow.audit.query(action="bundle.import")) == 1
        assert (
            len(uow.definitions.list_versions(app="service_desk", kind="forms", key="ticket")) == 1
        )


def test_dry_run_writes_nothing(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path
) -> None:
    plan = import_bundle(db=migrated_engine, bundle=load_bundle(pack), dry_run=True)

    assert not plan.is_noop
    assert "service_desk__ticket" not in _tables(migrated_engine)
    with uow_factory() as uow:
        assert uow.definitions.list_apps() == []


def test_changed_form_adds_columns_and_a_version_and_keeps_removed_fields(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path
) -> None:
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    ticket = pack / "forms" / "ticket.yaml"
    text = ticket.read_text(encoding="utf-8")
    text = text.replace("  - key: cost\n    type: money\n", "  - key: urgency\n    type: rating\n")
    text = text.replace("expr: hours * 100 + cost", "expr: hours * 100")
    ticket.write_text(text, encoding="utf-8")
    (pack / "roles" / "agent.json").unlink()

    plan = import_bundle(db=migrated_engine, bundle=load_bundle(pack))

    actions = _actions(plan)
    assert actions[("forms", "ticket")] == "update"
    assert actions[("tables", "service_desk__ticket")] == "update"
    assert actions[("roles", "agent")] == "retire"
    assert {"urgency", "cost"} <= _columns(migrated_engine, "service_desk__ticket")
    with uow_factory() as uow:
        current = uow.definitions.get_current(app="service_desk", kind="forms", key="ticket")
        assert current.version == 2
        assert [
            d.key for d in uow.definitions.list_definitions(app="service_desk", kind="roles")
        ] == []


def test_duplicates_refuse_a_new_unique_field_before_anything_changes(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path
) -> None:
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    with migrated_engine.begin() as conn:
        for _ in range(2):
            conn.execute(
                sa.text(
                    "INSERT INTO service_desk__customer (name, created_at, updated_at, version) "
                    "VALUES ('same', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
                )
            )
    customer = pack / "forms" / "customer.yaml"
    text = customer.read_text(encoding="utf-8").replace(
        "    required: true\n", "    required: true\n    unique: true\n", 1
    )
    customer.write_text(text, encoding="utf-8")

    with pytest.raises(DefinitionError) as info:
        import_bundle(db=migrated_engine, bundle=load_bundle(pack))

    assert [(p.source, p.path) for p in info.value.problems] == [
        ("forms/customer.yaml", "/fields/0/unique")
    ]
    with uow_factory() as uow:
        current = uow.definitions.get_current(app="service_desk", kind="forms", key="customer")
        assert current.version == 1


# A real database failure in the middle of the apply: after the tables changed, when the first
# definition version is written. Both databases must roll the DDL back with everything else.
_FAIL_ON_PUBLISH = {
    "sqlite": [
        "CREATE TRIGGER fail_publish BEFORE INSERT ON definition_versions "
        "BEGIN SELECT RAISE(ABORT, 'publish refused by test trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_publish() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'publish refused by test trigger'; END $$",
        "CREATE TRIGGER fail_publish BEFORE INSERT ON definition_versions "
        "FOR EACH ROW EXECUTE FUNCTION fail_publish()",
    ],
}
_DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER fail_publish"],
    "postgresql": [
        "DROP TRIGGER fail_publish ON definition_versions",
        "DROP FUNCTION fail_publish()",
    ],
}


def test_a_failure_during_apply_leaves_nothing_behind(
    migrated_engine: sa.Engine, uow_factory: UowFactory, pack: Path, backend: str
) -> None:
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    ticket = pack / "forms" / "ticket.yaml"
    text = ticket.read_text(encoding="utf-8")
    ticket.write_text(
        text.replace("  - key: cost\n", "  - key: urgency\n    type: rating\n  - key: cost\n"),
        encoding="utf-8",
    )
    (pack / "forms" / "part.yaml").write_text(
        "key: part\nlabel: Part\nfields:\n  - {key: name, type: text}\n", encoding="utf-8"
    )
    with migrated_engine.begin() as conn:
        for statement in _FAIL_ON_PUBLISH[backend]:
            conn.execute(sa.text(statement))
    try:
        with pytest.raises((sa.exc.DBAPIError, ConflictError), match="refused by test trigger"):
            import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    finally:
        with migrated_engine.begin() as conn:
            for statement in _DROP_TRIGGER[backend]:
                conn.execute(sa.text(statement))

    tables = _tables(migrated_engine)
    assert "service_desk__part" not in tables
    assert "urgency" not in _columns(migrated_engine, "service_desk__ticket")
    with uow_factory() as uow:
        current = uow.definitions.get_current(app="service_desk", kind="forms", key="ticket")
        assert current.version == 1
        assert len(uow.audit.query(action="bundle.import")) == 1


def test_export_round_trips_the_installed_app(
    migrated_engine: sa.Engine, uow_factory: UowFactory, tmp_path: Path
) -> None:
    original = load_bundle(AFTERSALES)
    import_bundle(db=migrated_engine, bundle=original)

    exported = export_app(db=migrated_engine, app="aftersales")
    target = tmp_path / "export.zip"
    from engine.bundles import dump_bundle

    dump_bundle(exported, target)
    reloaded = load_bundle(target)

    assert reloaded.manifest == original.manifest
    assert dict(reloaded.files) == dict(original.files)
    digests = {(k, key): definition_digest(s) for k, key, s in original.iter_definitions()}
    assert {(k, key): definition_digest(s) for k, key, s in reloaded.iter_definitions()} == digests
    assert import_bundle(db=migrated_engine, bundle=reloaded).is_noop


def test_views_are_checked_against_their_form_when_a_bundle_loads(tmp_path: Path) -> None:
    pack = tmp_path / "lists"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "lists_bundle", pack)
    board = pack / "views" / "board.yaml"
    board.write_text(board.read_text(encoding="utf-8").replace("[title, qty]", "[title, ghost]"))

    with pytest.raises(DefinitionError) as info:
        load_bundle(pack)

    assert [p.source for p in info.value.problems] == ["views/board.yaml"]
    assert info.value.problems[0].path.startswith("/columns/")


def test_import_builds_the_search_index(
    migrated_engine: sa.Engine, uow_factory: UowFactory, backend: str
) -> None:
    pack = Path(__file__).resolve().parents[1] / "fixtures" / "lists_bundle"
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))

    with migrated_engine.connect() as conn:
        if backend == "sqlite":
            found = [t for t in sa.inspect(conn).get_table_names() if "fts" in t]
        else:
            found = list(
                conn.scalars(
                    sa.text(
                        "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'lists__%' "
                        "AND indexdef ILIKE '%USING gin%'"
                    )
                )
            )
    assert found


def test_import_queues_alert_chains_once(
    migrated_engine: sa.Engine, uow_factory: UowFactory, tmp_path: Path
) -> None:
    from datetime import timedelta

    from engine.reports.alerts import schedule_app_alerts
    from engine.storage.sqltypes import utc_now
    from engine.storage.tables_jobs import job_queue

    pack = tmp_path / "aftersales"
    shutil.copytree(FIXTURE.parents[2].parent / "templates" / "aftersales", pack)
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    with uow_factory() as uow:  # a later re-import, an hour on (uow_factory cleans up after)
        later = utc_now() + timedelta(hours=1)
        assert schedule_app_alerts(uow, app="aftersales", now=later) == 0
        uow.commit()
    with migrated_engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(job_queue.c.kind == "report.alerts")
        ).scalar_one()
    assert count == 1  # one chain for the cockpit, not one per import

"""Publishing one form: plan, version, table change and definition in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, DefinitionError, EngineError
from engine.forms.publish import (
    get_form,
    list_form_versions,
    list_forms,
    plan_form_publish,
    publish_form,
    purge_field,
)
from engine.forms.spec import FormSpec
from engine.storage.form_tables import form_tables
from engine.storage.uow import UnitOfWork

APP = "pub"
NOW = datetime(2024, 5, 1, tzinfo=UTC)
OPTIONS = [{"key": "low", "label": "Low"}, {"key": "high", "label": "High"}]


def spec(*fields: dict[str, Any], **extra: Any) -> FormSpec:
    body = {"key": "item", "label": "Item", "fields": list(fields), **extra}
    return FormSpec.model_validate(body)


def field(key: str, type_: str, **options: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "label": key.title(), **options}


BASE = spec(field("title", "text"), field("qty", "text"))


@pytest.fixture
def db(migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]) -> sa.Engine:
    with uow_factory() as uow:
        uow.definitions.install_app(key=APP, name="Pub", version="1.0.0", manifest={})
        uow.commit()
    return migrated_engine


def insert(db: sa.Engine, form: FormSpec, **values: Any) -> int:
    main = form_tables(app=APP, form=form).main
    with db.begin() as conn:
        row = {"created_at": NOW, "updated_at": NOW, **values}
        return int(conn.execute(main.insert().values(row)).inserted_primary_key[0])


def column_types(db: sa.Engine) -> dict[str, str]:
    with db.connect() as conn:
        return {c["name"]: str(c["type"]) for c in sa.inspect(conn).get_columns("pub__item")}


def current_version(db: sa.Engine) -> int:
    return get_form(db=db, app=APP, form="item").version


def test_first_publish_creates_the_table_and_version_one(db: sa.Engine) -> None:
    plan = publish_form(db=db, app=APP, spec=BASE, actor=None)
    assert plan.applied and (plan.version_from, plan.version_to) == (None, 1)
    assert plan.lines[0] == "+ form item version 1"
    assert "+ table pub__item" in plan.lines
    assert [f.key for f in list_forms(db=db, app=APP)] == ["item"]
    assert "qty" in column_types(db)


def test_changes_show_definition_only_lines_and_make_a_new_version(db: sa.Engine) -> None:
    publish_form(
        db=db, app=APP, spec=spec(field("level", "select", options=OPTIONS[:1])), actor=None
    )
    wider = spec(
        {**field("level", "select", options=OPTIONS), "label": "Priority"},
        field("note", "textarea"),
    )
    planned = plan_form_publish(db=db, app=APP, spec=wider)
    assert planned.problems == () and not planned.applied
    assert "= field level: label changed (definition only)" in planned.lines
    assert "= field level: options added high (definition only)" in planned.lines
    assert "+ column pub__item.note TEXT" in planned.lines
    published = publish_form(db=db, app=APP, spec=wider, actor=None)
    assert published.version_to == 2 and current_version(db) == 2
    assert [v.version for v in list_form_versions(db=db, app=APP, form="item")] == [1, 2]
    again = publish_form(db=db, app=APP, spec=wider, actor=None)
    assert again.is_noop and not again.applied and current_version(db) == 2


def test_dry_run_changes_nothing(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    more = spec(field("title", "text"), field("qty", "text"), field("extra", "number"))
    plan = publish_form(db=db, app=APP, spec=more, actor=None, dry_run=True)
    assert plan.version_to == 2 and not plan.applied
    assert current_version(db) == 1 and "extra" not in column_types(db)


def test_invalid_definition_is_refused_with_every_problem(db: sa.Engine) -> None:
    bad = spec(field("a", "text"), field("total", "formula", expr="a +* 1", result_type="number"))
    planned = plan_form_publish(db=db, app=APP, spec=bad)
    assert planned.problems and all(p.path.startswith("/fields/1") for p in planned.problems)
    with pytest.raises(DefinitionError):
        publish_form(db=db, app=APP, spec=bad, actor=None)
    assert list_forms(db=db, app=APP) == []


def test_type_change_with_data_converts_every_value(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    first = insert(db, BASE, title="a", qty="2")
    counted = spec(field("title", "text"), field("qty", "number"))
    plan = publish_form(db=db, app=APP, spec=counted, actor=None)
    assert any(line.startswith("~ column pub__item.qty") for line in plan.lines)
    main = form_tables(app=APP, form=counted).main
    with db.connect() as conn:
        assert conn.scalar(sa.select(main.c.qty).where(main.c.id == first)) == 2.0


def test_refused_type_change_leaves_definition_and_table_as_they_were(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    bad_row = insert(db, BASE, title="a", qty="two")
    before = column_types(db)
    counted = spec(field("title", "text"), field("qty", "number"))
    with pytest.raises(DefinitionError) as caught:
        publish_form(db=db, app=APP, spec=counted, actor=None)
    ((code, path, message),) = [(p.code, p.path, p.message) for p in caught.value.problems]
    assert (code, path) == ("storage.value-unparseable", "/fields/1/type")
    assert f"ids {bad_row}" in message
    assert current_version(db) == 1 and column_types(db) == before


def test_failing_table_change_rolls_the_definition_back(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    insert(db, BASE, title="a", qty="2")
    with db.begin() as conn:  # a reporting view on the column blocks dropping it
        conn.execute(sa.text("CREATE VIEW pub_report AS SELECT qty FROM pub__item"))
    before = column_types(db)
    try:
        with pytest.raises(EngineError) as caught:
            publish_form(
                db=db,
                app=APP,
                spec=spec(field("title", "text"), field("qty", "number")),
                actor=None,
            )
        assert caught.value.code == "storage.ddl-failed"
        assert current_version(db) == 1 and column_types(db) == before
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("DROP VIEW pub_report"))


def test_stale_base_version_is_a_conflict(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    more = spec(field("title", "text"), field("qty", "text"), field("x", "text"))
    with pytest.raises(ConflictError) as caught:
        publish_form(db=db, app=APP, spec=more, actor=None, base_version=0)
    assert caught.value.code == "storage.stale-version"


def test_concurrent_publishes_of_one_form_one_wins(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def publish(extra: str) -> None:
        edited = spec(field("title", "text"), field("qty", "text"), field(extra, "text"))
        barrier.wait()
        try:
            publish_form(db=db, app=APP, spec=edited, actor=None, base_version=1)
            outcomes.append("won")
        except ConflictError as err:
            outcomes.append(err.code)

    threads = [threading.Thread(target=publish, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[-1] == "won" and outcomes.count("won") == 1
    assert current_version(db) == 2
    columns = column_types(db)
    assert ("left" in columns) != ("right" in columns)


def test_purge_drops_a_retired_field_and_is_audited(db: sa.Engine) -> None:
    with_lines = spec(
        field("title", "text"),
        field("qty", "text"),
        field("lines", "subform", fields=[field("sku", "text")]),
    )
    publish_form(db=db, app=APP, spec=with_lines, actor=None)
    insert(db, with_lines, title="a", qty="1")
    with pytest.raises(DefinitionError) as live:
        purge_field(db=db, app=APP, form="item", field="qty", actor=None)
    assert live.value.problems[0].code == "storage.field-not-retired"
    retired = spec(
        field("title", "text"),
        field("qty", "text", retired=True),
        field("lines", "subform", retired=True, fields=[field("sku", "text")]),
    )
    publish_form(db=db, app=APP, spec=retired, actor=None)
    preview = purge_field(db=db, app=APP, form="item", field="qty", actor=None, dry_run=True)
    assert preview == ["- column pub__item.qty (1 values)"]
    assert "qty" in column_types(db)
    assert purge_field(db=db, app=APP, form="item", field="qty", actor=None) == preview
    assert "qty" not in column_types(db)
    gone = purge_field(db=db, app=APP, form="item", field="lines", actor=None)
    assert gone == ["- table pub__item__lines (0 rows)"]
    with db.connect() as conn:
        assert not sa.inspect(conn).has_table("pub__item__lines")
    with UnitOfWork(db) as uow:
        entries = uow.audit.query(action="form.purge-field", limit=10)
    assert [e.detail["field"] for e in entries] == ["lines", "qty"]
    with pytest.raises(DefinitionError) as nothing:
        purge_field(db=db, app=APP, form="item", field="qty", actor=None)
    assert nothing.value.problems[0].code == "storage.nothing-to-purge"


def test_unchanged_definition_still_repairs_a_missing_table(db: sa.Engine) -> None:
    publish_form(db=db, app=APP, spec=BASE, actor=None)
    with db.begin() as conn:
        conn.execute(sa.text("DROP TABLE pub__item"))
    plan = publish_form(db=db, app=APP, spec=BASE, actor=None)
    assert plan.is_noop and plan.applied and "+ table pub__item" in plan.lines
    assert current_version(db) == 1 and "qty" in column_types(db)

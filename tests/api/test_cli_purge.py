"""`tangram purge`: shows what goes, asks, drops a retired field's column and audits it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from api.cli import cli
from engine.forms.publish import publish_form
from engine.forms.spec import FormSpec
from engine.storage import UnitOfWork


def _form(*fields: dict[str, object]) -> FormSpec:
    return FormSpec.model_validate({"key": "job", "label": "Job", "fields": list(fields)})


@pytest.fixture
def run(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Callable[..., Result]:
    url = migrated_engine.url.render_as_string(hide_password=False)
    with uow_factory() as uow:
        uow.definitions.install_app(key="cli", name="Cli", version="1.0.0", manifest={})
        uow.commit()
    name = {"key": "name", "type": "text", "label": "Name"}
    publish_form(
        db=migrated_engine, app="cli", spec=_form(name, {**name, "key": "old"}), actor=None
    )
    retired = {**name, "key": "old", "retired": True}
    publish_form(db=migrated_engine, app="cli", spec=_form(name, retired), actor=None)

    def invoke(*args: str, answer: str = "") -> Result:
        options = ["--database-url", url, "--data-dir", str(tmp_path / "data")]
        return CliRunner().invoke(cli, [*options, *args], input=answer, catch_exceptions=False)

    return invoke


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("cli__job")}


def test_purge_asks_first_and_drops_on_yes(
    run: Callable[..., Result], migrated_engine: sa.Engine
) -> None:
    declined = run("purge", "cli", "job", "old", answer="n\n")
    assert declined.exit_code == 0
    assert "- column cli__job.old (0 values)" in declined.output
    assert "nothing was changed" in declined.output and "old" in _columns(migrated_engine)
    done = run("purge", "cli", "job", "old", "--yes")
    assert done.exit_code == 0 and "purged" in done.output
    assert "old" not in _columns(migrated_engine)
    with UnitOfWork(migrated_engine) as uow:
        (entry,) = uow.audit.query(action="form.purge-field", limit=5)
    assert entry.target_key == "cli.job" and entry.detail["field"] == "old"


def test_purge_of_a_live_field_fails_with_its_code(run: Callable[..., Result]) -> None:
    result = run("purge", "cli", "job", "name", "--yes")
    assert result.exit_code == 1 and "storage.field-not-retired" in result.output

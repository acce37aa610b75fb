"""The `tangram` command line, run in-process against the test database."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from api.cli import cli
from engine.bundles import load_bundle
from engine.storage import UnitOfWork
from tests.support import FIXTURES

AFTERSALES = Path(__file__).resolve().parents[2] / "templates" / "aftersales"


@pytest.fixture
def run(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Callable[..., Result]:
    url = migrated_engine.url.render_as_string(hide_password=False)

    def invoke(*args: str) -> Result:
        options = ["--database-url", url, "--data-dir", str(tmp_path / "data")]
        return CliRunner().invoke(cli, [*options, *args], catch_exceptions=False)

    return invoke


def test_check_accepts_the_aftersales_bundle() -> None:
    result = CliRunner().invoke(cli, ["check", str(AFTERSALES)])

    assert result.exit_code == 0, result.output
    assert "ok: aftersales" in result.output


def test_check_lists_every_problem_with_code_file_and_path(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(FIXTURES / "service_desk", pack)
    (pack / "forms" / "customer.yaml").write_text("key: customer\nfields: [\n", encoding="utf-8")
    ticket = pack / "forms" / "ticket.yaml"
    ticket.write_text(ticket.read_text(encoding="utf-8").replace("type: money", "type: cash"))

    result = CliRunner().invoke(cli, ["check", str(pack)])

    assert result.exit_code == 1
    assert "forms/customer.yaml#  bundle.yaml-syntax" in result.output
    assert "forms/ticket.yaml#/fields/" in result.output
    assert "bundle.unknown-type" in result.output


def test_check_refuses_a_zip_slip(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bundle.yaml", "key: evil\nname: Evil\nversion: 1.0.0\n")
        zf.writestr("../../etc/passwd.yaml", "x: 1\n")

    result = CliRunner().invoke(cli, ["check", str(archive)])

    assert result.exit_code == 1
    assert "bundle.path-traversal" in result.output


def test_init_import_dry_run_import_again_and_export(
    run: Callable[..., Result], migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    assert "created user admin" in run("init").output
    assert "database is up to date" in run("init").output

    dry = run("import", str(AFTERSALES), "--dry-run")
    assert dry.exit_code == 0
    assert "+ table aftersales__ticket" in dry.output and "dry run" in dry.output
    assert "aftersales__ticket" not in sa.inspect(migrated_engine).get_table_names()

    applied = run("import", str(AFTERSALES))
    assert applied.exit_code == 0 and "applied" in applied.output
    assert "aftersales__ticket" in sa.inspect(migrated_engine).get_table_names()
    assert "nothing to do" in run("import", str(AFTERSALES)).output

    target = tmp_path / "out.zip"
    exported = run("export", "aftersales", str(target))
    assert exported.exit_code == 0
    assert load_bundle(target).counts() == load_bundle(AFTERSALES).counts()


def test_export_of_a_missing_app_fails_with_its_code(run: Callable[..., Result]) -> None:
    result = run("export", "nope", "out.zip")

    assert result.exit_code == 1
    assert "storage.app-not-found" in result.output

"""`tangram init`, `tangram user …` and `tangram role …` against the test database."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import cli
from engine.storage import UnitOfWork


@pytest.fixture
def run(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Callable[..., Result]:
    url = migrated_engine.url.render_as_string(hide_password=False)

    def invoke(*args: str, stdin: str | None = None) -> Result:
        options = ["--database-url", url, "--data-dir", str(tmp_path / "data")]
        return CliRunner().invoke(cli, [*options, *args], input=stdin, catch_exceptions=False)

    return invoke


def _password(result: Result) -> str:
    found = re.search(r"with password (\S+)", result.output)
    assert found, result.output
    return found.group(1)


def test_init_prints_the_admin_password_once(
    run: Callable[..., Result], auth_settings: object
) -> None:
    first = run("init")
    password = _password(first)
    assert "with password" not in run("init").output
    with TestClient(create_app(auth_settings), base_url="https://testserver") as client:  # type: ignore[arg-type]
        response = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": password}
        )
        assert response.status_code == 200 and response.json()["user"]["is_admin"]


def test_user_and_role_commands(
    run: Callable[..., Result], uow_factory: Callable[[], UnitOfWork]
) -> None:
    added = run("user", "add", "ann", "--name", "Ann Lee", "--email", "ann@example.com")
    assert added.exit_code == 0 and len(_password(added)) >= 16
    assert "ann\tactive\tAnn Lee" in run("user", "list").output
    assert run("role", "grant", "admin", "--user", "ann").exit_code == 0
    assert run("user", "passwd", "ann", stdin="new password 1\nnew password 1\n").exit_code == 0
    assert run("user", "disable", "ann").exit_code == 0
    assert "ann\tdisabled" in run("user", "list").output
    assert "revoked admin" in run("role", "revoke", "admin", "--user", "ann").output
    missing = run("role", "grant", "desk.ghost", "--user", "ann")
    assert missing.exit_code == 1 and "identity.no-role" in missing.output
    with uow_factory() as uow:
        actions = [e.action for e in uow.audit.query(target_key="ann")]
    assert {"user.create", "user.password", "user.disable"} <= set(actions)

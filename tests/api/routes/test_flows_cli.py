"""`tangram flow simulate` against an installed app."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import cli
from engine.flows.runtime_env import use_environment
from tests.engine.flows.conftest import write_bundle

FLOW = """
key: triage
label: Triage
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: route
    type: condition
    branches:
      - {key: urgent, expr: priority >= 3, to: wait_a_bit}
      - {key: normal, default: true, to: end}
  - {key: wait_a_bit, type: timer, delay: P1D}
  - {key: end, type: end}
edges:
  - {from: wait_a_bit, to: end}
  - {from: start, to: route}
"""


def test_flow_simulate_prints_the_path_and_the_deadlines(
    migrated_engine: sa.Engine, uow_factory: object, tmp_path: Path
) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(
        db=migrated_engine, bundle=load_bundle(write_bundle(tmp_path / "b", {"triage": FLOW}))
    )
    sample = tmp_path / "sample.yaml"
    sample.write_text("subject: hot\npriority: 4\n", encoding="utf-8")
    url = migrated_engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "flow", "simulate", "triage", "--app", "fl"]
    args += ["--record", str(sample), "--at", "2026-11-23 09:00:00"]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        use_environment(None)
    assert result.exit_code == 0, result.output
    assert "status: completed" in result.output
    assert '{"branch": "urgent"}' in result.output
    assert "timer wait_a_bit due 2026-11-24T09:00:00+00:00" in result.output
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM flow_instances")).scalar_one() == 0

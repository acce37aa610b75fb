"""Lookups through the permission compiler, on SQLite and PostgreSQL.

`form_access` gives a restricted actor an access that hides lookups of fields hidden on the
target form and nulls lookups through a restricted target scope; `check_lookups` then shows
those of related records in the actor's scope, with one SQL query per target form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.forms.record_access import check_lookups, form_access
from engine.forms.record_json import record_to_json
from engine.forms.service import RecordService
from engine.registry import DefinitionRegistry
from engine.storage.form_records import FormRecordStore, build_record_layout
from engine.storage.uow import UnitOfWork

BUNDLE = {
    "bundle.yaml": 'key: lk\nname: Lookups\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n',
    "forms/site.yaml": """
key: site
label: Site
fields:
  - {key: name, type: text, label: Name, required: true}
  - {key: secret, type: text, label: Secret}
""",
    "forms/job.yaml": """
key: job
label: Job
fields:
  - {key: note, type: text, label: Note}
  - {key: site, type: relation, form: site, label: Site}
  - {key: site_name, type: lookup, label: Site name, relation: site, field: name}
  - {key: site_secret, type: lookup, label: Site secret, relation: site, field: secret}
""",
    "roles/tech.yaml": """
key: tech
label: Tech
permissions:
  - {form: site, actions: [create, read], scope: own, fields: {secret: hidden}}
  - {form: job, actions: [read], scope: all}
""",
    "roles/stranger.yaml": """
key: stranger
label: Stranger
permissions:
  - {form: job, actions: [read], scope: all}
""",
}


@dataclass
class World:
    db: sa.Engine
    users: dict[str, int]
    sites: dict[str, int]
    jobs: dict[str, int]


@pytest.fixture
def world(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[World]:
    from engine.bundles import load_bundle
    from engine.identity.accounts import create_user, grant_role
    from engine.identity.passwords import PasswordPolicy
    from engine.installer import import_bundle

    for name, text in BUNDLE.items():
        (tmp_path / "lk" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lk" / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(tmp_path / "lk"))
    users: dict[str, int] = {}
    with uow_factory() as uow:
        for name, role in (("tech", "tech"), ("other", "tech"), ("stranger", "stranger")):
            user = create_user(
                uow=uow, actor=None, username=name, display_name=name, policy=PasswordPolicy()
            )
            grant_role(uow=uow, actor=None, app="lk", role=role, user_id=user.id)
            users[name] = user.id
        uow.commit()
    service = RecordService(db=migrated_engine, registry=DefinitionRegistry())

    def create(form: str, owner: int, data: dict[str, Any]) -> int:
        return service.create(app="lk", form=form, data=data, actor=owner).record.id

    sites = {
        "mine": create("site", users["tech"], {"name": "Mine", "secret": "s1"}),
        "theirs": create("site", users["other"], {"name": "Theirs", "secret": "s2"}),
    }
    jobs = {
        "a": create("job", users["other"], {"note": "a", "site": sites["mine"]}),
        "b": create("job", users["other"], {"note": "b", "site": sites["theirs"]}),
        "c": create("job", users["other"], {"note": "c"}),
    }
    yield World(migrated_engine, users, sites, jobs)


def _shown(world: World, who: str, *, check: bool) -> tuple[dict[str, dict[str, Any]], int]:
    """Each job as `who` sees it (by note), and the statements `check_lookups` ran."""
    from engine.identity.service import load_actor

    statements: list[str] = []
    with UnitOfWork(world.db) as uow:
        actor = load_actor(uow=uow, user_id=world.users[who])
        access = form_access(uow=uow, who=actor, app="lk", form="job")
        definition = DefinitionRegistry().form(uow, app="lk", key="job")
        layout = build_record_layout(app="lk", form=definition.compiled, forms=definition.forms)
        records = FormRecordStore(uow.conn, layout=layout).get_many(ids=list(world.jobs.values()))

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        sa.event.listen(uow.conn, "before_cursor_execute", count)
        if check:
            now = datetime.now(UTC)
            records, access = check_lookups(uow.conn, access, layout, records, who=actor, now=now)
        sa.event.remove(uow.conn, "before_cursor_execute", count)
    items = [record_to_json(definition, record, access=access) for record in records]
    return {item["note"]: item for item in items}, len(statements)


def test_checked_lookups_show_only_related_records_in_scope(world: World) -> None:
    shown, queries = _shown(world, "tech", check=True)
    assert queries == 1  # one scope query for the three jobs' sites, not one per job
    assert shown["a"]["site_name"] == "Mine"
    assert shown["b"]["site_name"] is None and shown["b"]["site"] == world.sites["theirs"]
    assert shown["c"]["site_name"] is None
    # The site's secret is hidden from techs: its lookup is left out of every job.
    assert all("site_secret" not in item for item in shown.values())


def test_unchecked_lookups_through_a_restricted_scope_are_null(world: World) -> None:
    # A path that serialises without `check_lookups` shows nothing rather than too much.
    shown, _queries = _shown(world, "tech", check=False)
    assert {item["site_name"] for item in shown.values()} == {None}
    assert all("site_secret" not in item for item in shown.values())


def test_no_read_on_the_target_form_hides_its_lookups(world: World) -> None:
    shown, queries = _shown(world, "stranger", check=True)
    assert queries == 0
    for item in shown.values():
        assert "site_name" not in item and "site_secret" not in item
    assert shown["a"]["site"] == world.sites["mine"]  # the relation's id stays readable


def test_trusted_callers_see_every_lookup(world: World) -> None:
    with UnitOfWork(world.db) as uow:
        access = form_access(uow=uow, who=None, app="lk", form="job")
    assert not access.scoped_lookups and not access.is_hidden("site_secret")

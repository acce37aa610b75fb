"""Scope conditions on a real form table (SQLite and PostgreSQL): three departments in a tree,
five users, rows owned by each; every scope kind returns exactly the expected ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import DefinitionError, NotFoundError, PermissionDenied
from engine.identity.permissions import FormAccess, compile_form_access
from engine.identity.spec import RoleSpec
from engine.installer import import_bundle
from engine.storage.form_tables import form_tables
from engine.storage.identity import DepartmentStore, UserStore
from engine.storage.permission_sql import (
    field_mask_columns,
    hidden_columns,
    records_in_scope,
    require_record_in_scope,
    scope_condition,
)
from engine.storage.tables import departments
from tests.conftest import _clean_committed_data

NOW = dt.datetime(2026, 11, 18, 9, 30, tzinfo=dt.UTC)
INJECTION = "x'); DROP TABLE perm__case; --"
BUNDLE = {
    "bundle.yaml": "key: perm\nname: Permissions test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/case.yaml": """
key: case
label: Case
fields:
  - {key: subject, type: text}
  - {key: region, type: text}
  - {key: cost, type: number, decimals: 2}
  - {key: assignee, type: user}
  - {key: helpers, type: user, multiple: true}
  - {key: team, type: department}
  - {key: site, type: address}
""",
}


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    is_admin: bool = False
    department_ids: frozenset[int] = field(default_factory=frozenset)
    subtree_department_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass
class World:
    engine: sa.Engine
    table: sa.Table
    users: dict[str, int]
    depts: dict[str, int]
    rows: list[dict[str, Any]]

    def actor(self, name: str, *, admin: bool = False) -> Actor:
        own = {"admin": "hq", "agent": "support", "eng": "north", "eng2": "north", "out": "hq"}
        below = {"hq": ("hq", "support", "north"), "support": ("support", "north")}
        dept = own[name]
        return Actor(
            user_id=self.users[name],
            is_admin=admin,
            department_ids=frozenset({self.depts[dept]}),
            subtree_department_ids=frozenset(self.depts[d] for d in below.get(dept, (dept,))),
        )

    def ids(self, access: FormAccess, actor: Actor, action: str = "read") -> list[int]:
        with self.engine.connect() as conn:
            where = scope_condition(
                access, self.table, actor=actor, dialect=conn.dialect.name, now=NOW, action=action
            )
            query = sa.select(self.table.c.id).order_by(self.table.c.id)
            if where is not None:
                query = query.where(where)
            return list(conn.execute(query).scalars())

    def expect(self, keep: Any) -> list[int]:
        return [row["id"] for row in self.rows if keep(row)]


@pytest.fixture(scope="module")
def world(migrated_engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("perm_bundle")
    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    bundle = load_bundle(Path(folder))
    import_bundle(db=migrated_engine, bundle=bundle)
    spec = bundle.definitions["forms"]["case"]
    table = form_tables(app="perm", form=spec, related_forms=[spec]).main
    with migrated_engine.begin() as conn:
        users, depts = _organisation(conn)
        rows = _rows(users, depts)
        conn.execute(table.insert(), [{k: v for k, v in r.items() if k[0] != "_"} for r in rows])
        inserted = list(conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars())
    for row, row_id in zip(rows, inserted, strict=True):
        row["id"] = row_id
    yield World(migrated_engine, table, users, depts, rows)
    with migrated_engine.begin() as conn:  # a tree cannot be deleted in one statement on SQLite
        conn.execute(sa.update(departments).values(parent_id=None))
    _clean_committed_data(migrated_engine)


def _organisation(conn: sa.Connection) -> tuple[dict[str, int], dict[str, int]]:
    user_store, dept_store = UserStore(conn), DepartmentStore(conn)
    users = {
        name: user_store.create(username=f"perm_{name}", display_name=name).id
        for name in ("admin", "agent", "eng", "eng2", "out")
    }
    hq = dept_store.create(key="perm_hq", name="HQ").id
    support = dept_store.create(key="perm_support", name="Support", parent_id=hq).id
    north = dept_store.create(key="perm_north", name="North", parent_id=support).id
    depts = {"hq": hq, "support": support, "north": north}
    places = {"admin": hq, "agent": support, "eng": north, "eng2": north, "out": hq}
    for name, dept in places.items():
        dept_store.add_member(department_id=dept, user_id=users[name])
    return users, depts


def _rows(users: dict[str, int], depts: dict[str, int]) -> list[dict[str, Any]]:
    owners = list(users)
    rows = []
    for i in range(15):
        owner = owners[i % 5]
        rows.append(
            {
                "owner_id": users[owner],
                "created_by": users[owners[(i + 1) % 5]],
                "created_at": NOW,
                "updated_at": NOW,
                "subject": INJECTION if i == 3 else f"case {i}",
                "region": ["north", "south", None][i % 3],
                "cost": i * 10,
                "assignee": users["eng"] if i % 4 == 0 else None,
                "helpers": [users["eng"], users["eng2"]] if i % 3 == 0 else [users["agent"]],
                "team": depts["north"] if i % 2 else None,
                "site__province": "北京市" if i % 2 else "上海市",
                "_owner": owner,
            }
        )
    for row in rows:
        row["_helpers"] = row["helpers"]
    return rows


def role(scope: str, **extra: Any) -> RoleSpec:
    permission = {"form": "case", "actions": ["read", "update"], "scope": scope, **extra}
    return RoleSpec.model_validate({"key": f"r_{scope}", "label": "R", "permissions": [permission]})


def compiled(actor: Actor, *roles: RoleSpec) -> FormAccess:
    return compile_form_access(actor=actor, app="perm", form="case", roles=roles)


# --- the three actors of the matrix ------------------------------------------------------------


def test_admin_sees_all(world: World) -> None:
    admin = world.actor("admin", admin=True)
    access = compiled(admin)
    assert scope_condition(access, world.table, actor=admin, dialect="sqlite", now=NOW) is None
    assert world.ids(access, admin) == world.expect(lambda r: True)


def test_department_agent(world: World) -> None:
    agent = world.actor("agent")
    got = world.ids(compiled(agent, role("department")), agent)
    assert got == world.expect(lambda r: r["_owner"] == "agent")


def test_department_tree(world: World) -> None:
    agent = world.actor("agent")
    got = world.ids(compiled(agent, role("department_tree")), agent)
    assert got == world.expect(lambda r: r["_owner"] in ("agent", "eng", "eng2"))
    admin_as_user = world.actor("admin")
    got = world.ids(compiled(admin_as_user, role("department_tree")), admin_as_user)
    assert got == world.expect(lambda r: True)


def test_department_of_engineer_holds_colleagues(world: World) -> None:
    eng = world.actor("eng")
    got = world.ids(compiled(eng, role("department")), eng)
    assert got == world.expect(lambda r: r["_owner"] in ("eng", "eng2"))


def test_engineer_own(world: World) -> None:
    eng = world.actor("eng")
    got = world.ids(compiled(eng, role("own")), eng)
    assert got == world.expect(lambda r: r["_owner"] == "eng")
    assert got  # not vacuous


def test_engineer_assigned_single_and_multiple(world: World) -> None:
    eng, eng2 = world.actor("eng"), world.actor("eng2")
    single = role("assigned", assigned_fields=["assignee"])
    both = role("assigned", assigned_fields=["assignee", "helpers"])
    assert world.ids(compiled(eng, single), eng) == world.expect(
        lambda r: r["assignee"] == world.users["eng"]
    )
    assert world.ids(compiled(eng2, both), eng2) == world.expect(
        lambda r: world.users["eng2"] in r["_helpers"]
    )
    assert world.ids(compiled(eng, both), eng) == world.expect(
        lambda r: r["assignee"] == world.users["eng"] or world.users["eng"] in r["_helpers"]
    )


def test_union_of_own_and_assigned(world: World) -> None:
    eng = world.actor("eng")
    access = compiled(eng, role("own"), role("assigned", assigned_fields=["assignee"]))
    assert world.ids(access, eng) == world.expect(
        lambda r: r["_owner"] == "eng" or r["assignee"] == world.users["eng"]
    )


def test_all_scope_and_no_permission(world: World) -> None:
    out = world.actor("out")
    assert world.ids(compiled(out, role("all")), out) == world.expect(lambda r: True)
    assert world.ids(compiled(out), out) == []
    assert world.ids(compiled(out, role("all")), out, action="delete") == []


def test_actor_without_user_or_departments(world: World) -> None:
    anonymous = Actor(user_id=None)
    for scope in ("own", "department", "department_tree"):
        assert world.ids(compiled(anonymous, role(scope)), anonymous) == []


# --- expression scopes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "keep"),
    [
        ('region = "north"', lambda w, r: r["region"] == "north"),
        ("owner = $user.id", lambda w, r: r["_owner"] == "eng"),
        ("owner = $user.id OR assignee = $user.id",
         lambda w, r: r["_owner"] == "eng" or r["assignee"] == w.users["eng"]),
        ("team in ($user.departments)", lambda w, r: r["team"] == w.depts["north"]),
        # blank is "not in" any list, as in the Python evaluator
        ("team not in ($user.departments)", lambda w, r: r["team"] != w.depts["north"]),
        ("cost >= 50 AND site__province = \"北京市\"",
         lambda w, r: r["cost"] >= 50 and r["site__province"] == "北京市"),
        ("site.province = \"上海市\" AND owner <> $user",
         lambda w, r: r["site__province"] == "上海市" and r["_owner"] != "eng"),
        (f'subject = "{INJECTION}"', lambda w, r: r["subject"] == INJECTION),
        ("subject = \"' OR 1=1 --\"", lambda w, r: False),
    ],
    ids=["text", "owner", "or", "in-list", "not-in-list", "and", "part", "injection",
         "injection-2"],
)  # fmt: skip
def test_expression_scope(world: World, expr: str, keep: Any) -> None:
    eng = world.actor("eng")
    got = world.ids(compiled(eng, role("expr", scope_expr=expr)), eng)
    assert got == world.expect(lambda r: keep(world, r))


def test_expression_list_variable_when_empty(world: World) -> None:
    lonely = Actor(user_id=world.users["out"])
    assert world.ids(compiled(lonely, role("expr", scope_expr="team in ($user.departments)")),
                     lonely) == []  # fmt: skip
    got = world.ids(compiled(lonely, role("expr", scope_expr="team not in ($user.departments)")),
                    lonely)  # fmt: skip
    assert got == world.expect(lambda r: True)


def test_unknown_fields_are_definition_errors(world: World) -> None:
    eng = world.actor("eng")
    with pytest.raises(DefinitionError) as info:
        world.ids(compiled(eng, role("assigned", assigned_fields=["nope"])), eng)
    assert info.value.problems[0].code == "identity.bad-assigned-field"
    with pytest.raises(DefinitionError) as info:
        world.ids(compiled(eng, role("expr", scope_expr="nope = 1")), eng)
    assert info.value.problems[0].code == "identity.bad-scope-expr"


def test_values_are_bound_not_inlined(world: World) -> None:
    eng = world.actor("eng")
    access = compiled(eng, role("expr", scope_expr=f'subject = "{INJECTION}"'), role("own"))
    where = scope_condition(access, world.table, actor=eng, dialect="postgresql", now=NOW)
    sql = str(where)
    assert "DROP" not in sql and str(world.users["eng"]) not in sql


def test_scope_sql_compares_bare_columns(world: World) -> None:
    agent = world.actor("agent")
    access = compiled(agent, role("own"), role("department"))
    where = scope_condition(access, world.table, actor=agent, dialect="postgresql", now=NOW)
    sql = str(where.compile(dialect=sa.dialects.postgresql.dialect()))  # type: ignore[union-attr]
    assert "perm__case.owner_id = %(param_1)s" in sql
    assert "perm__case.owner_id = ANY (array((SELECT user_departments.user_id" in sql
    sqlite = scope_condition(access, world.table, actor=agent, dialect="sqlite", now=NOW)
    assert "owner_id IN (SELECT user_departments.user_id" in str(sqlite)


# --- single records, batches and field masks -------------------------------------------------


def test_record_in_scope_or_not_found(world: World) -> None:
    eng = world.actor("eng")
    access = compiled(eng, role("own"))
    mine = world.expect(lambda r: r["_owner"] == "eng")
    theirs = world.expect(lambda r: r["_owner"] != "eng")
    with world.engine.connect() as conn:
        require_record_in_scope(conn, access, world.table, mine[0], actor=eng, now=NOW)
        for record_id in (theirs[0], 10_000_000):
            with pytest.raises(NotFoundError) as info:
                require_record_in_scope(conn, access, world.table, record_id, actor=eng, now=NOW)
            assert info.value.code == "record.not-found"
        batch = records_in_scope(
            conn, access, world.table, [*mine, *theirs], actor=eng, now=NOW, action="update"
        )
        assert batch == frozenset(mine)
        assert records_in_scope(
            conn, access, world.table, mine, actor=eng, now=NOW, action="delete"
        ) == frozenset()  # fmt: skip


def test_field_mask_columns(world: World) -> None:
    eng = world.actor("eng")
    hiding = role("own", fields={"cost": "hidden", "site": "hidden", "region": "read"})
    access = compiled(eng, hiding)
    names = [c.name for c in field_mask_columns(access, world.table)]
    assert "cost" not in names and "site__province" not in names
    assert {"id", "owner_id", "created_at", "subject", "region", "helpers"} <= set(names)
    assert hidden_columns(access, world.table) == frozenset(
        c.name for c in world.table.c if c.name == "cost" or c.name.startswith("site__")
    )
    with world.engine.connect() as conn:
        rows = conn.execute(sa.select(*field_mask_columns(access, world.table))).mappings().all()
    assert rows and all("cost" not in row for row in rows)


# --- through the list engine ---------------------------------------------------------------


def test_list_engine_pages_and_counts_only_the_scope(world: World) -> None:
    from engine.forms.compiler import compile_form
    from engine.forms.listing import build_list_query
    from engine.identity.permissions import require_visible_query
    from engine.storage.form_queries import count_records, fetch_page, query_target

    spec = _case_spec()
    form = compile_form(spec, forms={"case": spec})
    target = query_target(app="perm", form=form, forms={"case": spec})
    agent = world.actor("agent")
    access = compiled(agent, role("department_tree", fields={"cost": "hidden"}))
    query = build_list_query(form, forms={"case": spec}, sort=["-id"], limit=200)
    require_visible_query(access, query)
    with world.engine.connect() as conn:
        extra = [scope_condition(access, target.main, actor=agent, dialect=conn.dialect.name,
                                 now=NOW)]  # fmt: skip
        page = fetch_page(conn, target=target, query=query, now=NOW, extra_conditions=extra)
        count = count_records(conn, target=target, query=query, now=NOW, extra_conditions=extra)
    expected = world.expect(lambda r: r["_owner"] in ("agent", "eng", "eng2"))
    assert [row["id"] for row in page.items] == sorted(expected, reverse=True)
    assert count.value == len(expected) and count.exact
    sorted_by_cost = build_list_query(form, forms={"case": spec}, sort=["cost"])
    with pytest.raises(PermissionDenied):
        require_visible_query(access, sorted_by_cost)


def _case_spec() -> Any:
    import yaml

    from engine.forms.spec import FormSpec

    return FormSpec.model_validate(yaml.safe_load(BUNDLE["forms/case.yaml"]))

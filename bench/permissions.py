"""Row permissions at scale: a list page and a report aggregate with a department scope against
the same queries with no scope.

Usage: .venv/bin/python bench/permissions.py --db URL --rows 1000000 [--repeat 50] [--reuse]

Installs the after-sales bundle on a scratch database (PostgreSQL: the public schema is DROPPED
and recreated; SQLite: a new file), creates a department tree (1 head office, 6 regions, 4 teams
each) with 600 users, and bulk-loads `--rows` tickets (COPY on PostgreSQL) owned by users spread
over the teams. Indexes a deployment adds for this: (created_at, id) for the default sort and
(owner_id, created_at) for record scopes; the form itself declares (status, priority) among
others. Then times, with the engine's own code paths:
  list    fetch_page, 25 rows sorted by created_at desc (no filter)
  report  SELECT status, count(*) … GROUP BY status
  count   count_records, exact (scoped counts must not be whole-table estimates)
each without a scope (an admin) and with the scope compiled from a role for a team agent
(department: ~1/24 of the rows) and a regional lead (department_tree: ~1/6). Every timed call
compiles the access and the scope first, as a request does; the cases run in turns (medians),
so load from other processes hits them alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _load import copy_rows, insert_rows, ticket_target  # bench/ is on sys.path as a script

from engine.bundles import load_bundle
from engine.forms.listing import build_list_query
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, compile_form_access
from engine.identity.spec import RoleSpec
from engine.installer import import_bundle
from engine.storage.database import create_database_engine
from engine.storage.form_queries import QueryTarget, count_records, fetch_page
from engine.storage.identity import DepartmentStore, UserStore
from engine.storage.migrate import upgrade_database
from engine.storage.permission_sql import scope_conditions

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "templates" / "aftersales"
TABLE = "aftersales__ticket"
REGIONS, TEAMS_PER_REGION, USERS_PER_TEAM = 6, 4, 25
STATUSES = {
    "closed": 58, "resolved": 10, "in_progress": 8, "assigned": 6, "new": 4,
    "waiting_customer": 6, "waiting_parts": 3, "onsite": 2, "cancelled": 3,
}  # fmt: skip
COLUMNS = ["number", "subject", "description", "channel", "ticket_type", "customer", "priority",
           "status", "created_at", "updated_at", "version", "owner_id", "created_by",
           "assignee"]  # fmt: skip
EXTRA_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS ix_bench_ticket_created ON {TABLE} (created_at, id)",
    f"CREATE INDEX IF NOT EXISTS ix_bench_ticket_owner ON {TABLE} (owner_id, created_at)",
]
ROLES = {
    "team_agent": {"form": "ticket", "actions": ["read", "update"], "scope": "department"},
    "region_lead": {"form": "ticket", "actions": ["read"], "scope": "department_tree"},
}


def _organisation(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        users, depts = UserStore(conn), DepartmentStore(conn)
        head = depts.create(key="hq", name="Head office").id
        for r in range(REGIONS):
            region = depts.create(key=f"region_{r}", name=f"Region {r}", parent_id=head).id
            for t in range(TEAMS_PER_REGION):
                team = depts.create(key=f"team_{r}_{t}", name=f"Team {r}.{t}", parent_id=region)
                for u in range(USERS_PER_TEAM):
                    user = users.create(username=f"u_{r}_{t}_{u}", display_name=f"User {r}.{t}")
                    depts.add_member(department_id=team.id, user_id=user.id, is_primary=True)


def _rows(count: int, user_ids: list[int], seed: int = 11) -> Iterator[list[Any]]:
    rng = random.Random(seed)
    start = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    span = 2 * 365 * 86400
    statuses = list(STATUSES)
    weights = list(STATUSES.values())
    for serial in range(count):
        created = start + dt.timedelta(seconds=int(span * (serial / count) ** 0.8))
        owner = rng.choice(user_ids)
        yield [
            f"WO-{created:%Y%m}-{serial:07d}", f"Ticket #{serial}", "现场设备问题",
            "phone", "repair", rng.randint(1, 5000), "medium",
            rng.choices(statuses, weights)[0], created, created, 1, owner, owner,
            rng.choice(user_ids),
        ]  # fmt: skip


def _load(engine: sa.Engine, rows: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        customer = sa.Table("aftersales__customer", sa.MetaData(), autoload_with=conn)
        conn.execute(customer.insert(), [{"created_at": now, "updated_at": now}] * 5000)
        user_ids = list(conn.execute(sa.text("SELECT user_id FROM user_departments")).scalars())
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        copy_rows(engine, TABLE, COLUMNS, _rows(rows, user_ids), skip_triggers=True)
    else:
        insert_rows(engine, TABLE, COLUMNS, _rows(rows, user_ids))
    print(f"load    {rows:>9} tickets: {time.perf_counter() - started:8.1f} s")


def _indexes(engine: sa.Engine) -> None:
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in EXTRA_INDEXES:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ANALYZE")
    print(f"index   extra + ANALYZE: {time.perf_counter() - started:8.1f} s")


def _actor(engine: sa.Engine, username: str, *, admin: bool = False) -> Actor:
    with engine.connect() as conn:
        user = UserStore(conn).get_by_username(username=username)
        parents = {d.id: d.parent_id for d in DepartmentStore(conn).list_departments()}
        own = frozenset(DepartmentStore(conn).list_user_departments(user_id=user.id))
    region = {parents[d] for d in own}
    subtree = own | region | {d for d, p in parents.items() if p in region}
    return Actor(
        user_id=user.id,
        username=username,
        is_admin=admin,
        department_ids=own,
        subtree_department_ids=frozenset(subtree),
    )


def _access(actor: Actor, role: str | None) -> FormAccess:
    roles = [] if role is None else [_role(role)]
    return compile_form_access(actor=actor, app="aftersales", form="ticket", roles=roles)


def _role(key: str) -> RoleSpec:
    return RoleSpec.model_validate({"key": key, "label": key, "permissions": [ROLES[key]]})


def _interleaved(fns: list[Callable[[], Any]], repeat: int, pick: Any = None) -> list[float]:
    """Median ms (or `pick` of the runs) of each of `fns`, run in turns so that load from
    elsewhere hits all alike."""
    for fn in fns:
        fn()
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, runs, strict=True):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
    return [(pick or statistics.median)(times) for times in runs]


def _measure(engine: sa.Engine, target: QueryTarget, repeat: int) -> None:
    now = dt.datetime.now(dt.UTC)
    admin = _actor(engine, "u_0_0_0", admin=True)
    agent = _actor(engine, "u_1_2_3")
    cases = [("no scope (admin)", admin, None), ("department (team agent)", agent, "team_agent"),
             ("department_tree (region)", agent, "region_lead")]  # fmt: skip
    query = build_list_query(target.form, forms=target.forms, sort=["-created_at"], limit=25)
    main = target.main
    with engine.connect() as conn:
        dialect = conn.dialect.name

        def scope(actor: Actor, role: str | None) -> list[Any]:
            access = _access(actor, role)
            return scope_conditions(access, main, actor=actor, dialect=dialect, now=now)

        def page(actor: Actor, role: str | None) -> Any:
            # per request: compile the access and the scope, then fetch the page
            extra = scope(actor, role)
            return fetch_page(conn, target=target, query=query, now=now, extra_conditions=extra)

        def report(actor: Actor, role: str | None) -> Any:
            where = [main.c.deleted_at.is_(None), *scope(actor, role)]
            statement = sa.select(main.c.status, sa.func.count()).where(*where)
            return conn.execute(statement.group_by(main.c.status)).all()

        def count(actor: Actor, role: str | None) -> int:
            return _count(conn, target, query, now, scope(actor, role))

        compile_us = [_interleaved([lambda a=a, r=r: scope(a, r)], 200)[0] * 1000
                      for _, a, r in cases]  # fmt: skip
        seen = [sum(n for _, n in report(a, r)) for _, a, r in cases]
        pages = [lambda a=a, r=r: page(a, r) for _, a, r in cases]
        lists = _interleaved(pages, repeat)
        fastest = _interleaved(pages, repeat, pick=min)
        reports = _interleaved([lambda a=a, r=r: report(a, r) for _, a, r in cases], 7)
        counts = _interleaved([lambda a=a, r=r: count(a, r) for _, a, r in cases], 5)
        for i, (label, _, _) in enumerate(cases):
            print(
                f"{label:<26} rows in scope {seen[i]:>9}  compile {compile_us[i]:5.0f} us  "
                f"list {lists[i]:6.2f} ms (x{lists[i] / lists[0]:.2f}; "
                f"min {fastest[i]:5.2f} ms x{fastest[i] / fastest[0]:.2f})  "
                f"report {reports[i]:7.2f} ms (x{reports[i] / reports[0]:.2f})  "
                f"exact count {counts[i]:7.2f} ms"
            )
        _explain(conn, main, dialect, now, agent)


def _count(conn: sa.Connection, target: QueryTarget, query: Any, now: Any, extra: Any) -> int:
    # Scoped counts are exact: a planner estimate would be computed from the whole table.
    found = count_records(
        conn, target=target, query=query, now=now, extra_conditions=extra, exact_limit=10**9
    )
    return found.value


def _explain(conn: sa.Connection, main: sa.Table, dialect: str, now: Any, agent: Actor) -> None:
    if dialect != "postgresql":
        return
    access = _access(agent, "team_agent")
    extra = scope_conditions(access, main, actor=agent, dialect=dialect, now=now)
    page = (
        sa.select(main.c.id)
        .where(main.c.deleted_at.is_(None), *extra)
        .order_by(main.c.created_at.desc(), main.c.id.desc())
        .limit(26)
    )
    compiled = page.compile(conn, compile_kwargs={"literal_binds": True})
    print("plan of the scoped list page:")
    for (line,) in conn.exec_driver_sql(f"EXPLAIN {compiled}"):
        print("   ", line)


def _fresh_engine(url: str) -> sa.Engine:
    engine = create_database_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_database_engine(url) if args.reuse else _fresh_engine(url)
        print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
              f"{platform.python_version()}, {engine.dialect.name}, {args.rows} rows")  # fmt: skip
        if not args.reuse:
            upgrade_database(engine)
            import_bundle(db=engine, bundle=load_bundle(BUNDLE))
            _organisation(engine)
            _load(engine, args.rows)
        _indexes(engine)
        _measure(engine, ticket_target(engine, BUNDLE), args.repeat)
        engine.dispose()


if __name__ == "__main__":
    main()

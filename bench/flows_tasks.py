"""Task completions per second through the task service, against a bare transaction.

Each ticket's flow waits at `fill` (a handle task with an editable field). One completion is
`TaskService.complete(values=...)`: it checks the task and the node's field permissions,
updates the record through the records writer (validation, history, change events), closes the
task, resumes the token through the real flow runtime and opens the `review` task — one
transaction. The bare side does the least the same transaction must write: update the record
row, close the task row, insert the next task row, commit. Both run in alternating batches of
10 so they see the same machine load.

Usage: .venv/bin/python bench/flows_tasks.py [--db URL] [--n N]
Without --db it uses a fresh SQLite file; with a PostgreSQL URL it DROPs and recreates the
public schema first, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bundles import load_bundle  # noqa: E402
from engine.flows.runtime_env import FlowEnvironment, use_environment  # noqa: E402
from engine.flows.tasks_service import TaskService  # noqa: E402
from engine.forms.service import RecordService  # noqa: E402
from engine.identity.accounts import grant_role  # noqa: E402
from engine.identity.service import load_actor  # noqa: E402
from engine.installer import import_bundle  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402
from engine.storage.sqltypes import utc_now  # noqa: E402
from engine.storage.tables_assign import flow_task_groups, flow_tasks  # noqa: E402
from engine.storage.uow import UnitOfWork  # noqa: E402

APP, TABLE = "bt", "bt__ticket"
FILES = {
    "bundle.yaml": "key: bt\nname: Task bench\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true, max_length: 200}
  - {key: note, type: text}
  - {key: priority, type: number, decimals: 0}
""",
    "flows/work.yaml": """
key: work
label: Work
form: ticket
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: fill
    type: user_task
    kind: handle
    assignees: [{type: user, value: agent}]
    field_permissions: {note: required, priority: edit}
  - key: review
    type: user_task
    kind: approve
    assignees: [{type: user, value: agent}]
  - {key: end, type: end}
edges:
  - {from: start, to: fill}
  - {from: fill, to: review}
  - {from: review, to: end}
""",
}


def _fresh_engine(url: str | None, tmp: Path) -> sa.Engine:
    if url is None:
        return create_database_engine(f"sqlite:///{tmp / 'bench.db'}")
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def _install(engine: sa.Engine, tmp: Path) -> int:
    folder = tmp / "bundle"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    upgrade_database(engine)
    import_bundle(db=engine, bundle=load_bundle(folder))
    with UnitOfWork(engine) as uow:
        agent = uow.users.create(username="agent", display_name="Agent").id
        grant_role(uow=uow, actor=None, app=None, role="admin", user_id=agent)
        uow.commit()
    return agent


def _open_tasks(engine: sa.Engine, node: str) -> list[int]:
    query = (
        sa.select(flow_tasks.c.id)
        .join(flow_task_groups, flow_task_groups.c.id == flow_tasks.c.group_id)
        .where(flow_task_groups.c.node_key == node, flow_tasks.c.status == "open")
        .order_by(flow_tasks.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _bare_step(engine: sa.Engine, record_id: int, task_id: int, i: int) -> None:
    ticket = sa.table(TABLE, sa.column("id"), sa.column("note"), sa.column("version"))
    with engine.begin() as conn:
        conn.execute(
            ticket.update()
            .where(ticket.c.id == record_id)
            .values(note=f"bare {i}", version=ticket.c.version + 1)
        )
        conn.execute(
            flow_tasks.update()
            .where(flow_tasks.c.id == task_id, flow_tasks.c.status == "open")
            .values(status="done", version=flow_tasks.c.version + 1)
        )
        conn.execute(
            flow_tasks.insert().values(
                group_id=_BARE_GROUP[0],
                instance_id=0,
                kind="approve",
                status="open",
                created_at=utc_now(),
            )
        )


_BARE_GROUP: list[int] = [0]


def _timed(step: Callable[[int], None], indexes: list[int], out: list[float]) -> None:
    for i in indexes:
        began = time.perf_counter()
        step(i)
        out.append(time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--n", type=int, default=500, help="task completions per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        engine = _fresh_engine(args.db, tmp)
        agent = _install(engine, tmp)
        env = FlowEnvironment()
        use_environment(env)
        records = RecordService(db=engine, registry=env.registry, listeners=env.listeners)
        service = TaskService(db=engine, records=records)
        ids = [
            records.create(app=APP, form="ticket", data={"subject": f"t{i}"}, actor=agent).record.id
            for i in range(2 * args.n)
        ]
        tasks = _open_tasks(engine, "fill")
        assert len(tasks) == 2 * args.n, len(tasks)
        with UnitOfWork(engine) as uow:
            actor = load_actor(uow=uow, user_id=agent)
            first = uow.conn.execute(sa.select(sa.func.min(flow_tasks.c.group_id))).scalar_one()
            _BARE_GROUP[0] = int(first)
        service_times: list[float] = []
        bare_times: list[float] = []

        def complete(i: int) -> None:
            values = {"note": f"done {i}", "priority": i % 5}
            service.complete(task_id=tasks[i], actor=actor, values=values)

        def bare(i: int) -> None:
            _bare_step(engine, ids[i], tasks[i], i)

        for start in range(0, args.n, 10):
            batch = list(range(start, min(start + 10, args.n)))
            _timed(complete, batch, service_times)
            _timed(bare, [i + args.n for i in batch], bare_times)
        reviews = len(_open_tasks(engine, "review"))
        assert reviews == args.n, f"expected {args.n} review tasks, found {reviews}"
        _report(engine, args.n, service_times, bare_times)


def _report(engine: sa.Engine, n: int, service: list[float], bare: list[float]) -> None:
    def rate(times: list[float]) -> float:
        return len(times) / sum(times)

    def p(times: list[float], q: int) -> float:
        return statistics.quantiles(times, n=100)[q - 1] * 1000

    print(f"machine: {socket.gethostname()} {platform.machine()} {platform.python_version()}")
    print(f"database: {engine.dialect.name}, {n} completions per side (next task checked: {n})")
    print(
        f"service complete+record update+next task: {rate(service):8.1f}/s "
        f"(p50 {p(service, 50):.2f} ms, p95 {p(service, 95):.2f} ms)"
    )
    print(
        f"bare update+close+insert, one commit:     {rate(bare):8.1f}/s "
        f"(p50 {p(bare, 50):.2f} ms, p95 {p(bare, 95):.2f} ms)"
    )
    print(f"ratio service/bare: {rate(service) / rate(bare):.1%}")


if __name__ == "__main__":
    main()

"""Flow runtime throughput: instance starts per second and node transitions per second.

1. starts: `Stepper.start` of a start → end flow, one transaction (and commit) per instance.
2. transitions: one instance running a chain of N pass-through nodes (parallel splits with one
   way out) in one transaction; transitions/s = nodes entered / time.
3. triggered: record creates that start a 3-node flow through the record listener, against the
   same creates with the flow disabled (the cost the trigger adds to a write).
User-task completions per second are measured by bench/flows_tasks.py.

Usage: .venv/bin/python bench/flows.py [--db URL] [--n N] [--chain N]
Without --db it uses a fresh SQLite file; with a PostgreSQL URL it DROPs and recreates the
public schema first, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bundles import load_bundle  # noqa: E402
from engine.flows.runtime_env import FlowEnvironment, use_environment  # noqa: E402
from engine.flows.runtime_steps import Stepper  # noqa: E402
from engine.installer import import_bundle  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402
from engine.storage.uow import UnitOfWork  # noqa: E402

APP = "fb"
FORM = """
key: item
label: Item
fields:
  - {key: title, type: text, required: true}
  - {key: note, type: text}
"""
START_END = """
key: bare
label: Bare
form: item
trigger: {type: manual}
nodes: [{key: start, type: start}, {key: end, type: end}]
edges: [{from: start, to: end}]
"""
TRIGGERED = """
key: on_create
label: On create
form: item
enabled: ENABLED
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: stamp
    type: action
    actions: [{type: set_fields, values: {note: 'CONCAT("seen ", title)'}}]
  - {key: end, type: end}
edges: [{from: start, to: stamp}, {from: stamp, to: end}]
"""


def chain(n: int) -> str:
    nodes = ["  - {key: start, type: start}"]
    nodes += [f"  - {{key: n{i}, type: parallel_split}}" for i in range(n)]
    nodes += ["  - {key: end, type: end}"]
    keys = ["start", *[f"n{i}" for i in range(n)], "end"]
    edges = [f"  - {{from: {a}, to: {b}}}" for a, b in zip(keys, keys[1:], strict=False)]
    return (
        "key: chain\nlabel: Chain\nform: item\ntrigger: {type: manual}\nnodes:\n"
        + "\n".join(nodes)
        + "\nedges:\n"
        + "\n".join(edges)
        + "\n"
    )


def install(engine: sa.Engine, tmp: Path, n_chain: int, triggered: bool) -> None:
    files = {
        "bundle.yaml": f"key: {APP}\nname: Flow bench\nversion: 1.0.{int(triggered)}\n"
        'engine: ">=0.1,<1.0"\n',
        "forms/item.yaml": FORM,
        "flows/bare.yaml": START_END,
        "flows/chain.yaml": chain(n_chain),
        "flows/on_create.yaml": TRIGGERED.replace("ENABLED", str(triggered).lower()),
    }
    folder = tmp / f"bundle_{int(triggered)}"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))


def timed(label: str, count: int, unit: str, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    rate = count / seconds
    print(f"{label:<44} {count:>7} {unit:<12} {seconds:8.2f} s {rate:10.1f} {unit}/s", flush=True)
    return rate


def fresh_engine(url: str | None, tmp: Path) -> sa.Engine:
    if url is None:
        return create_database_engine(f"sqlite:///{tmp / 'bench.db'}")
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--n", type=int, default=500, help="instances and records per run")
    parser.add_argument("--chain", type=int, default=200, help="nodes of the transition chain")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        engine = fresh_engine(args.db, tmp)
        upgrade_database(engine)
        env = FlowEnvironment()
        use_environment(env)
        install(engine, tmp, args.chain, triggered=True)
        print(
            f"{platform.python_implementation()} {platform.python_version()}, {engine.dialect.name}"
        )
        record_id = create_records(engine, env, 1)[0]

        def starts() -> None:
            for _ in range(args.n):
                with UnitOfWork(engine) as uow:
                    Stepper(uow, now=now, env=env).start(
                        app=APP, flow="bare", record_id=record_id, initiator_id=None
                    )
                    uow.commit()

        timed("instance starts (start → end, commit each)", args.n, "instances", starts)

        def transitions() -> None:
            with UnitOfWork(engine) as uow:
                Stepper(uow, now=now, env=env).start(
                    app=APP, flow="chain", record_id=record_id, initiator_id=None
                )
                uow.commit()

        transitions()  # warm the compiled-flow cache
        timed(f"node transitions (chain of {args.chain + 2})", args.chain + 2, "nodes", transitions)

        with_flow = timed(
            "record creates starting a 3-node flow",
            args.n,
            "records",
            lambda: create_records(engine, env, args.n),
        )
        install(engine, tmp, args.chain, triggered=False)
        bare = timed(
            "record creates, flow disabled",
            args.n,
            "records",
            lambda: create_records(engine, env, args.n),
        )
        print(f"trigger cost: creates run at {with_flow / bare:.2f}× the speed without the flow")
        engine.dispose()


def create_records(engine: sa.Engine, env: FlowEnvironment, n: int) -> list[int]:
    from engine.forms.record_writer import RecordWriter

    ids = []
    for i in range(n):
        with UnitOfWork(engine) as uow:
            writer = RecordWriter(uow, env.kit, source="api", depth=0)
            ids.append(writer.create(APP, "item", {"title": f"item {i}"}, actor=None).id)
            uow.commit()
    return ids


if __name__ == "__main__":
    main()

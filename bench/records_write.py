"""Creates of the after-sales ticket: the records service and API against bare inserts.

1. `RecordService.create` (validation, autonumber, relation checks, history; one transaction
   per record) against a bare SQLAlchemy Core insert of the same row with a commit per row.
2. POST through the HTTP API (uvicorn in a subprocess) against a bare FastAPI endpoint doing
   the bare insert (another subprocess), both called sequentially by an httpx client.
Each pair runs in alternating batches of 10, so both sides see the same machine load.

Usage: .venv/bin/python bench/records_write.py [--db URL] [--n N]
Without --db it uses a fresh SQLite file; with a PostgreSQL URL it DROPs and recreates the
public schema first, so point it at a scratch database.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _auth import admin_headers  # noqa: E402  (bench/ is on sys.path when run as a script)

from engine.bundles import load_bundle  # noqa: E402
from engine.forms.service import RecordService  # noqa: E402
from engine.installer import import_bundle  # noqa: E402
from engine.registry import DefinitionRegistry  # noqa: E402
from engine.storage.database import create_database_engine  # noqa: E402
from engine.storage.migrate import upgrade_database  # noqa: E402

BUNDLE = ROOT / "templates" / "aftersales"
APP, TABLE = "aftersales", "aftersales__ticket"
ADDRESS = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": "文三路 1 号"}


def _fresh_engine(url: str | None, tmp: Path) -> sa.Engine:
    if url is None:
        return create_database_engine(f"sqlite:///{tmp / 'bench.db'}")
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


def _seed(service: RecordService) -> dict[str, Any]:
    """A customer and a contact; returns the ticket payload that refers to them."""

    def create(form: str, data: dict[str, Any]) -> int:
        return service.create(app=APP, form=form, data=data, actor=None).record.id

    customer = create(
        "customer",
        {"code": "C001", "name": "ACME", "customer_type": "company", "address": ADDRESS},
    )
    contact = create("contact", {"name": "Zhang", "customer": customer, "mobile": "13800138000"})
    return {
        "subject": "Printer jams on tray 2",
        "description": "Paper jams every third page since the firmware update.",
        "channel": "phone",
        "ticket_type": "tech_support",
        "priority": "medium",
        "customer": customer,
        "contact": contact,
    }


def _rates(
    n: int, first: Callable[[int], Any], second: Callable[[int], Any]
) -> tuple[float, float]:
    """Calls per second of each, run in alternating batches of 10 so that both see the same
    machine load (the disk's fsync rate varies a lot on a shared machine)."""
    for i in range(min(20, n)):  # warm caches and connections
        first(-1 - i)
        second(-1 - i)
    spent = [0.0, 0.0]
    for start in range(0, n, 10):
        for which, action in enumerate((first, second)):
            started = time.perf_counter()
            for i in range(start, min(start + 10, n)):
                action(i)
            spent[which] += time.perf_counter() - started
    return n / spent[0], n / spent[1]


class BareInsert:
    """The same ticket row, inserted by SQLAlchemy Core with a commit per row."""

    counter = itertools.count()

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.table = sa.Table(TABLE, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            row = conn.execute(sa.select(self.table).limit(1)).one()._asdict()
        row.pop("id")
        self.row = row

    def __call__(self, _i: int) -> int:
        values = {**self.row, "number": f"BARE-{next(self.counter)}-{time.time_ns()}"}
        with self.engine.connect() as conn:
            new_id = conn.execute(
                sa.insert(self.table).values(values).returning(self.table.c.id)
            ).scalar_one()
            conn.commit()
        return int(new_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(kind: str, url: str, data_dir: str, port: int) -> None:
    """Subprocess entry: run the real app or the bare endpoint under uvicorn."""
    import uvicorn
    from fastapi import Body, FastAPI

    if kind == "app":
        from api.app import create_app
        from engine.settings import Settings

        app = create_app(Settings(database_url=url, data_dir=Path(data_dir)))
    else:
        app = FastAPI()
        bare = BareInsert(create_database_engine(url))

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/bare", status_code=201)
        def insert(payload: dict[str, Any] = Body(...)) -> dict[str, int]:  # noqa: B008
            return {"id": bare(0)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _http_rates(url: str, tmp: Path, n: int, payload: dict[str, Any]) -> tuple[float, float]:
    """Creates per second through the real API and through the bare endpoint."""
    servers: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []
    try:
        posts = []
        for kind in ("app", "bare"):
            port = _free_port()
            command = [sys.executable, __file__, "--serve", kind, "--db", url, "--port", str(port)]
            servers.append(subprocess.Popen([*command, "--data-dir", str(tmp)]))
            headers = admin_headers(url) if kind == "app" else {}
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers)
            clients.append(client)
            _wait(client, "/api/v1/health" if kind == "app" else "/health")
            path = f"/api/v1/apps/{APP}/forms/ticket/records" if kind == "app" else "/bare"
            posts.append(_poster(client, path, payload))
        return _rates(n, posts[0], posts[1])
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def _poster(client: httpx.Client, path: str, payload: dict[str, Any]) -> Callable[[int], None]:
    def post(_i: int) -> None:
        response = client.post(path, json=payload)
        if response.status_code != 201:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

    return post


def _wait(client: httpx.Client, path: str) -> None:
    deadline = time.monotonic() + 180  # a loaded host takes long to import the app
    while time.monotonic() < deadline:
        try:
            if client.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--serve", choices=("app", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.db, args.data_dir, args.port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        _run(args.db, Path(tmp), args.n)


def _run(url: str | None, tmp: Path, n: int) -> None:
    engine = _fresh_engine(url, tmp)
    upgrade_database(engine)
    import_bundle(db=engine, bundle=load_bundle(BUNDLE))
    url = engine.url.render_as_string(hide_password=False)
    service = RecordService(db=engine, registry=DefinitionRegistry())
    payload = _seed(service)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}; database: {engine.dialect.name}; n={n}"
    )

    def create(_i: int) -> None:
        service.create(app=APP, form="ticket", data=payload, actor=None)

    create(0)  # the bare insert copies this row
    service_rate, bare_rate = _rates(n, create, BareInsert(engine))
    print(
        f"service create  {service_rate:8.1f}/s   bare Core insert {bare_rate:8.1f}/s   "
        f"ratio {service_rate / bare_rate:6.1%} (target >= 40%)"
    )
    engine.dispose()
    api_rate, bare_api_rate = _http_rates(url, tmp, n, payload)
    print(
        f"HTTP API create {api_rate:8.1f}/s   bare FastAPI     {bare_api_rate:8.1f}/s   "
        f"ratio {api_rate / bare_api_rate:6.1%} (target >= 50%)"
    )


if __name__ == "__main__":
    main()

"""Two processes publishing the same definition at once: one wins, the other gets a conflict."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from engine.errors import ConflictError
from engine.storage.uow import UnitOfWork


def _publish_after_barrier(
    engine: sa.Engine, barrier: threading.Barrier, body: dict[str, str], out: list[object]
) -> None:
    def clock() -> datetime:
        barrier.wait(timeout=10)  # both have read the current version when they get here
        return datetime.now(UTC)

    try:
        with UnitOfWork(engine, clock=clock) as uow:
            uow.definitions.publish(
                app="race", kind="form", key="f", body=body, digest=body["d"], actor=None
            )
            uow.commit()
        out.append("ok")
    except ConflictError as err:
        out.append(err.code)


def test_concurrent_publishes_do_not_both_win(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    with uow_factory() as uow:
        uow.definitions.install_app(key="race", name="Race", version="1.0.0", manifest={})
        uow.definitions.publish(app="race", kind="form", key="f", body={}, digest="0", actor=None)
        uow.commit()
    barrier = threading.Barrier(2)
    results: list[object] = []
    threads = [
        threading.Thread(
            target=_publish_after_barrier, args=(migrated_engine, barrier, {"d": d}, results)
        )
        for d in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # PostgreSQL waits for the winner, then finds the version moved; SQLite refuses the write.
    assert sorted(map(str, results)) in (
        ["ok", "storage.stale-version"],
        ["ok", "storage.busy"],
    )
    with uow_factory() as uow:
        versions = uow.definitions.list_versions(app="race", kind="form", key="f")
    assert [v.version for v in versions] == [1, 2]

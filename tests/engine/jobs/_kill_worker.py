"""A worker process for the kill -9 test: its handler writes the effect, then hangs."""

from __future__ import annotations

import sys

from engine.jobs.worker import Worker, WorkerOptions
from engine.storage.database import create_database_engine
from tests.engine.jobs._handlers import write_then_hang

if __name__ == "__main__":
    db = create_database_engine(sys.argv[1])
    options = WorkerOptions(lease_seconds=float(sys.argv[2]), batch_size=1)
    Worker(db, handlers={"test.effect": write_then_hang}, name="doomed", options=options).drain()

"""Report engine fixtures: the after-sales bundle with generated tickets, once per module.

`aftersales_data` installs templates/aftersales into the session's migrated database, loads
`TICKETS` generated tickets (bench/_report_data.py, seed 42) and empties the database after
the module, as `uow_factory` does after each test. `forms` are the bundle's form specs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, _clean_committed_data

sys.path.insert(0, str(ROOT / "bench"))
import _report_data as report_data  # type: ignore[import-not-found]  # noqa: E402

TICKETS = 3000


@pytest.fixture(scope="module")
def aftersales_data(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    report_data.install(migrated_engine)
    report_data.load(migrated_engine, TICKETS)
    yield migrated_engine
    _clean_committed_data(migrated_engine)


@pytest.fixture(scope="module")
def forms() -> Mapping[str, Any]:
    from engine.bundles import load_bundle

    return dict(load_bundle(ROOT / "templates" / "aftersales").definitions["forms"])

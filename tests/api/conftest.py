"""API tests drive `create_app(settings)` through TestClient on the migrated test database."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from engine.settings import Settings
from engine.storage import UnitOfWork

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bundles"


@pytest.fixture
def client(
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> Iterator[TestClient]:
    """A client of an app on the test database; committed data is wiped afterwards."""
    url = migrated_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp_path, max_upload_bytes=2_000_000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def zip_folder(folder: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    """The folder as zip bytes, plus `extra` members (which may be hostile)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def service_desk_zip() -> bytes:
    return zip_folder(FIXTURES / "service_desk")

"""Suite-wide fixtures: the database backends every storage test runs on.

SQLite always; PostgreSQL too when TANGRAM_TEST_DATABASE_URL is set (CI sets it, and there an
unreachable server fails the run instead of skipping).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from engine.storage.database import create_database_engine

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from engine.storage.uow import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TANGRAM_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL to an empty-at-session-start database of `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    assert PG_URL is not None
    return PG_URL


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    """A raw engine on the backend (no migrations applied): for SQL that needs no tables."""
    engine = create_database_engine(db_url)
    with engine.connect() as conn:  # fail loudly if the server is unreachable
        conn.execute(sa.text("SELECT 1"))
    yield engine
    engine.dispose()


# --- storage fixtures (helper "storage") -------------------------------------------------------
#
# `migrated_engine`  session-wide engine on a database migrated to head (once per backend).
# `conn`             per test: a connection inside an outer transaction, rolled back at teardown.
#                    Code that commits takes `UnitOfWork(conn)`: its commits release SAVEPOINTs
#                    and the outer rollback still discards everything.
# `uow_factory`      per test: builds real `UnitOfWork(migrated_engine)`s whose commits are
#                    durable. At teardown every engine table is emptied and every form table
#                    (a name with "__") is dropped, so later tests start clean.


def _reset_postgresql_schema(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def migrated_engine(backend: str, db_engine: sa.Engine) -> sa.Engine:
    """The session's engine after `alembic upgrade head` on an emptied database."""
    from engine.storage.migrate import upgrade_database

    if backend == "postgresql":
        _reset_postgresql_schema(db_engine)
    upgrade_database(db_engine)
    return db_engine


@pytest.fixture
def conn(migrated_engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that is rolled back after the test."""
    with migrated_engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            if outer.is_active:
                outer.rollback()


def _clean_committed_data(engine: sa.Engine) -> None:
    from engine.storage.tables import metadata

    with engine.begin() as connection:
        forms = sa.MetaData()
        forms.reflect(connection, only=lambda name, _meta: "__" in name)
        # reflect() also pulls in the engine tables the form tables point at: drop only forms
        form_tables = [t for t in forms.sorted_tables if "__" in t.name]
        forms.drop_all(connection, tables=form_tables)
        # the department tree points at itself: cut the links before deleting its rows
        departments = metadata.tables["departments"]
        connection.execute(departments.update().values(parent_id=None, head_user_id=None))
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    # Pooled SQLite connections that other threads used (concurrency tests, dashboard widgets)
    # were seen to keep a schema from before the drop ("no such table" in the next test):
    # start every test on fresh connections.
    engine.dispose()


@pytest.fixture
def uow_factory(migrated_engine: sa.Engine) -> Iterator[Callable[[], UnitOfWork]]:
    """`uow_factory()` makes units of work that really commit; the data is wiped afterwards."""

    from engine.storage.uow import UnitOfWork

    yield lambda: UnitOfWork(migrated_engine)
    _clean_committed_data(migrated_engine)


# --- API and web fixtures ----------------------------------------------------------------------


@pytest.fixture
def anonymous_client(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[TestClient]:
    """A client of `create_app(settings)` on the test database, signed in as nobody."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from engine.settings import Settings

    url = migrated_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp_path, max_upload_bytes=2_000_000)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(
    anonymous_client: TestClient, uow_factory: Callable[[], UnitOfWork]
) -> TestClient:
    """The same client acting as an administrator through an API token (no CSRF needed)."""
    from engine.identity.accounts import create_user, grant_role
    from engine.identity.passwords import PasswordPolicy
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token

    with uow_factory() as uow:
        user = create_user(
            uow=uow, actor=None, username="tester", display_name="Tester", policy=PasswordPolicy()
        )
        grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user.id)
        token = create_token(uow=uow, actor=load_actor(uow=uow, user_id=user.id), name="tests")
        uow.commit()
    anonymous_client.headers["Authorization"] = f"Bearer {token.token}"
    return anonymous_client


# --- records fixtures (helper "records") -------------------------------------------------------
#
# `records_bundle_dir`  a small bundle written to tmp_path: customer ← ticket (relations both
#                       ways, lookup, rollups with a filter, autonumber, address, subform, link
#                       table), device (on_delete: clear) and tag (multiple relation).
# `records_app`         that bundle imported into the test database (committed; wiped afterwards
#                       by `uow_factory`); returns the app key "rec".

RECORDS_BUNDLE = {
    "bundle.yaml": """
key: rec
name: Records test
version: 1.0.0
engine: ">=0.1,<1.0"
""",
    "forms/customer.yaml": """
key: customer
label: Customer
title_field: name
fields:
  - {key: name, type: text, label: Name, required: true, max_length: 120, unique: true}
  - {key: tickets, type: relation, form: ticket, multiple: true, inverse: customer}
  - {key: ticket_count, type: rollup, relation: tickets, aggregate: count}
  - {key: open_count, type: rollup, relation: tickets, aggregate: count, filter: status = "open"}
  - {key: total_hours, type: rollup, relation: tickets, aggregate: sum, field: hours}
""",
    "forms/device.yaml": """
key: device
label: Device
fields:
  - {key: serial, type: text, label: Serial, required: true, unique: true}
""",
    "forms/tag.yaml": """
key: tag
label: Tag
fields:
  - {key: label, type: text, label: Label, required: true}
""",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
title_field: number
fields:
  - {key: number, type: autonumber, pattern: "T-{YYYYMMDD}-{####}", reset: daily}
  - {key: subject, type: text, label: Subject, required: true, max_length: 200}
  - key: status
    type: select
    options: [{key: open, label: Open}, {key: closed, label: Closed}]
    default: open
  - {key: hours, type: number, decimals: 2}
  - {key: customer, type: relation, form: customer, inverse: tickets, on_delete: refuse}
  - key: device
    type: relation
    form: device
    on_delete: clear
    validations:
      - {expr: ISBLANK(device) OR device.serial <> "BLOCKED", message: Blocked, code: blocked}
  - {key: customer_name, type: lookup, relation: customer, field: name}
  - {key: site, type: address}
  - {key: tags, type: relation, form: tag, multiple: true}
  - {key: owner_tag, type: relation, form: tag}
  - {key: tag_choice, type: relation, form: tag, filter: label = $record.subject}
  - key: items
    type: subform
    fields:
      - {key: sku, type: text, required: true}
      - {key: qty, type: number, decimals: 0}
  - {key: item_qty, type: rollup, relation: items, aggregate: sum, field: qty}
  - key: label
    type: formula
    result_type: text
    expr: CONCAT(subject, " @ ", customer_name)
""",
}


@pytest.fixture
def records_bundle_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rec_bundle"
    for name, text in RECORDS_BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
def records_app(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], records_bundle_dir: Path
) -> str:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(records_bundle_dir))
    return "rec"


# --- identity fixtures (helper "auth") ---------------------------------------------------------
#
# `make_user(username, *, password=..., admin=False, departments=(), roles=())` commits a user
#            (roles as "app.key" strings, departments as ids) and returns its `UserRecord`.
# `auth_settings` settings for an app under test: cheap argon2, non-Secure cookies are not
#            needed because clients use https://testserver.
# `admin_client` a TestClient signed in as an admin (cookie session); its CSRF token is sent on
#            every request. `login(client, username, password)` signs any client in.

TEST_PASSWORD = "correct horse battery"


@pytest.fixture
def make_user(uow_factory: Callable[[], UnitOfWork]) -> Callable[..., object]:
    from engine.identity.accounts import create_user, grant_role, set_membership
    from engine.identity.passwords import PasswordPolicy

    policy = PasswordPolicy(time_cost=1, memory_kib=8 * 1024)

    def make(
        username: str,
        *,
        password: str | None = TEST_PASSWORD,
        admin: bool = False,
        departments: tuple[int, ...] = (),
        roles: tuple[str, ...] = (),
    ) -> object:
        with uow_factory() as uow:
            user = create_user(
                uow=uow,
                actor=None,
                username=username,
                display_name=username.title(),
                password=password,
                policy=policy,
            )
            for department_id in departments:
                set_membership(
                    uow=uow, actor=None, department_id=department_id, user_id=user.id, member=True
                )
            grants = [(None, "admin")] if admin else []
            grants += [tuple(r.split(".", 1)) for r in roles]  # type: ignore[misc]
            for app, key in grants:
                grant_role(uow=uow, actor=None, app=app, role=key, user_id=user.id)
            uow.commit()
        return user

    return make


@pytest.fixture
def auth_settings(migrated_engine: sa.Engine, tmp_path: Path) -> object:
    from engine.settings import Settings

    return Settings(
        database_url=migrated_engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        max_upload_bytes=2_000_000,
        password_time_cost=1,
        password_memory_kib=8 * 1024,
    )


def login(client: TestClient, username: str, password: str = TEST_PASSWORD) -> str:
    """Sign `client` in and make it send the CSRF token; returns the token."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    csrf = str(response.json()["csrf_token"])
    client.headers["X-CSRF-Token"] = csrf
    return csrf


@pytest.fixture
def admin_client(
    uow_factory: Callable[[], UnitOfWork], make_user: Callable[..., object], auth_settings: object
) -> Iterator[TestClient]:
    """A client signed in as `root`, an admin, over https (the session cookie is Secure)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    make_user("root", admin=True)
    with TestClient(create_app(auth_settings), base_url="https://testserver") as test_client:  # type: ignore[arg-type]
        login(test_client, "root")
        yield test_client

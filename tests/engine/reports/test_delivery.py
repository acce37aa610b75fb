"""Scheduled delivery (订阅推送): the import starts the chain, the worker (fixed clock) mails
each recipient the summary and an XLSX run as that recipient, to a real local SMTP server,
and queues the next Monday; bad definitions fail the bundle check with a path."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError
from engine.forms.service import RecordService
from engine.jobs.providers import collect_handlers
from engine.jobs.worker import Worker, WorkerOptions
from engine.registry import DefinitionRegistry
from engine.reports.delivery import DELIVERY_JOB, DELIVERY_MAIL_JOB, schedule_app_deliveries
from engine.reports.delivery_mail import delivery_handlers
from engine.settings import Settings
from engine.storage.tables import users
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork
from tests.engine.outbox.receivers import SmtpInbox, smtp_receiver

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUNDAY = datetime(2026, 11, 29, 12, tzinfo=SHANGHAI).astimezone(UTC)
MONDAY_8 = datetime(2026, 11, 30, 8, tzinfo=SHANGHAI).astimezone(UTC)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DASHBOARD = """
key: ops
label: Ops
filters:
  - {key: period, label: Period, type: date_range, default: last_30_days,
     bindings: {total: opened_on, regions: opened_on}}
widgets:
  - {key: total, title: Tickets, report: by_region, card: tickets, compare: previous_period,
     small_sample: {measures: [tickets]}, x: 0, y: 0, w: 6, h: 4}
  - {key: regions, report: by_region, x: 6, y: 0, w: 12, h: 6}
deliveries:
  - key: weekly
    label: Weekly ops
    schedule: {every: week, weekday: mon, at: "08:00", timezone: Asia/Shanghai}
    roles: [manager, agent]
    users: [vic]
    filters: {period: last_7_days}
    attachments: [{widget: regions, format: xlsx}]
"""
BUNDLE = {
    "bundle.yaml": "key: dlv\nname: Delivery test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - {key: region, type: text}
  - {key: opened_on, type: date}
""",
    "roles/manager.yaml": """
key: manager
label: Manager
permissions:
  - {form: ticket, actions: [read, export], scope: all}
""",
    "roles/agent.yaml": """
key: agent
label: Agent
permissions:
  - {form: ticket, actions: [read, export], scope: own}
""",
    "roles/viewer.yaml": """
key: viewer
label: Viewer
permissions:
  - {form: ticket, actions: [read], scope: all}
""",
    "reports/by_region.yaml": """
key: by_region
label: By region
dataset: {form: ticket}
dimensions: [{key: region, field: region}]
measures: [{key: tickets, aggregate: count}]
sort: [{by: region}]
""",
    "dashboards/ops.yaml": DASHBOARD,
}


def write_bundle(folder: Path, **changes: str) -> Path:
    for name, text in (BUNDLE | changes).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
def app(
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    make_user: Callable[..., Any],
    tmp_path: Path,
) -> dict[str, int]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(write_bundle(tmp_path / "dlv")))
    people = {"mia": "dlv.manager", "ace": "dlv.agent", "vic": "dlv.viewer"}
    ids = {name: make_user(name, roles=(role,)).id for name, role in people.items()}
    with migrated_engine.begin() as conn:
        for name, user_id in ids.items():
            address = f"{name}@example.test"
            conn.execute(users.update().where(users.c.id == user_id).values(email=address))
    records = RecordService(db=migrated_engine, registry=DefinitionRegistry())
    rows = [("east", "2026-11-25", None), ("east", "2026-11-26", ids["ace"]),
            ("west", "2026-11-27", None), ("north", "2026-11-28", ids["ace"]),
            ("west", "2026-11-20", None)]  # fmt: skip  # the last: the previous week
    for region, opened, owner in rows:
        data = {"subject": "s", "region": region, "opened_on": opened}
        records.create(app="dlv", form="ticket", data=data, actor=owner)
    return ids


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpInbox]]:
    with smtp_receiver() as found:
        yield found


def queued(engine: sa.Engine, kind: str) -> list[tuple[str, datetime]]:
    query = (
        sa.select(job_queue.c.key, job_queue.c.due_at)
        .where(job_queue.c.kind == kind, job_queue.c.status == "queued")
        .order_by(job_queue.c.due_at)
    )
    with engine.connect() as conn:
        return [(str(k), d.astimezone(UTC)) for k, d in conn.execute(query)]


def restart_chain(engine: sa.Engine, now: datetime) -> None:
    """Drop the chain the import started by the real clock and start it at `now`."""
    with engine.begin() as conn:
        conn.execute(sa.delete(job_queue).where(job_queue.c.kind == DELIVERY_JOB))
    with UnitOfWork(engine) as uow:
        assert schedule_app_deliveries(uow, app="dlv", now=now) == 1
        uow.commit()


def run_worker(engine: sa.Engine, port: int, at: datetime) -> int:
    handlers = delivery_handlers(Settings(smtp_host="127.0.0.1", smtp_port=port))
    worker = Worker(engine, handlers=handlers, options=WorkerOptions(retry_base_seconds=0),
                    clock=lambda: at)  # fmt: skip
    return worker.drain()


def mail_to(inbox: SmtpInbox, address: str) -> Message:
    [message] = [m for m in inbox.messages if m["To"] == address]
    return message


def parts(message: Message) -> tuple[str, str, list[tuple[str, bytes]]]:
    """(text, html, [(file name, content)]) of a delivery mail."""
    text = html = ""
    files: list[tuple[str, bytes]] = []
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if part.get_filename():
            files.append((str(part.get_filename()), payload))
        elif part.get_content_type() == "text/plain":
            text = payload.decode()
        elif part.get_content_type() == "text/html":
            html = payload.decode()
    return text, html, files


def sheet_rows(content: bytes) -> list[tuple[Any, ...]]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [tuple(row) for row in workbook.active.iter_rows(values_only=True)]  # type: ignore[union-attr]


def test_the_handlers_are_provided() -> None:
    handlers = collect_handlers()
    assert DELIVERY_JOB in handlers and DELIVERY_MAIL_JOB in handlers


def test_the_import_starts_one_chain_at_the_next_monday_8(
    app: dict[str, int], migrated_engine: sa.Engine
) -> None:
    [(key, due)] = queued(migrated_engine, DELIVERY_JOB)
    local = due.astimezone(SHANGHAI)
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)
    assert key == f"report-delivery:dlv:ops:weekly@{local.isoformat(timespec='minutes')}"
    with UnitOfWork(migrated_engine) as uow:  # a re-import keeps the queued chain
        assert schedule_app_deliveries(uow, app="dlv", now=SUNDAY) == 0


def test_the_worker_mails_each_recipient_their_rows(
    app: dict[str, int], migrated_engine: sa.Engine, smtp: tuple[int, SmtpInbox]
) -> None:
    port, inbox = smtp
    restart_chain(migrated_engine, SUNDAY)
    assert [d for _, d in queued(migrated_engine, DELIVERY_JOB)] == [MONDAY_8]
    assert run_worker(migrated_engine, port, SUNDAY) == 0  # not due yet
    assert run_worker(migrated_engine, port, MONDAY_8 + timedelta(minutes=1)) == 4
    assert sorted(m["To"] for m in inbox.messages) == [
        "ace@example.test", "mia@example.test", "vic@example.test"]  # fmt: skip

    text, html, files = parts(mail_to(inbox, "mia@example.test"))
    assert mail_to(inbox, "mia@example.test")["Subject"] == "Weekly ops: Ops 2026-11-30"
    assert "Tickets: 4 +3 vs previous period n<30" in text  # 4 this week, 1 the week before
    assert "<th>Tickets</th><td>4 <small>n&lt;30</small></td>" in html
    [(name, content)] = files
    assert name == "regions.xlsx"
    assert sheet_rows(content) == [("region", "tickets"), ("east", 2), ("north", 1), ("west", 1)]

    text, _html, files = parts(mail_to(inbox, "ace@example.test"))  # own records only
    assert "Tickets: 2" in text
    assert sheet_rows(files[0][1]) == [("region", "tickets"), ("east", 1), ("north", 1)]

    text, _html, files = parts(mail_to(inbox, "vic@example.test"))  # may read, not export
    assert files == [] and "Tickets: 4" in text
    assert "left out (identity.permission-denied)" in text

    next_monday = MONDAY_8 + timedelta(days=7)
    assert [d for _, d in queued(migrated_engine, DELIVERY_JOB)] == [next_monday]
    assert queued(migrated_engine, DELIVERY_MAIL_JOB) == []


def test_a_removed_delivery_ends_its_chain(
    app: dict[str, int], migrated_engine: sa.Engine, smtp: tuple[int, SmtpInbox], tmp_path: Path
) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    restart_chain(migrated_engine, SUNDAY)
    without = DASHBOARD.split("deliveries:")[0]
    bundle = write_bundle(tmp_path / "v2", **{"dashboards/ops.yaml": without})
    import_bundle(db=migrated_engine, bundle=load_bundle(bundle))
    assert run_worker(migrated_engine, smtp[0], MONDAY_8) == 1
    assert smtp[1].messages == []
    assert queued(migrated_engine, DELIVERY_JOB) == []


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ("{every: week, at: '08:00'}", "report.bad-schedule", "/deliveries/0/schedule"),
        ("{every: day, at: '25:00'}", "bundle.invalid-value", "/deliveries/0/schedule/at"),
        (
            "{every: day, timezone: Mars/Olympus}",
            "report.bad-schedule",
            "/deliveries/0/schedule/timezone",
        ),  # fmt: skip
    ],
)
def test_a_bad_schedule_is_a_definition_error(
    tmp_path: Path, change: str, code: str, path: str
) -> None:
    text = DASHBOARD.replace(
        '{every: week, weekday: mon, at: "08:00", timezone: Asia/Shanghai}', change
    )
    assert_problem(tmp_path, text, code, path)


@pytest.mark.parametrize(
    ("old", "new", "code", "path"),
    [
        ("{widget: regions,", "{widget: nope,", "dashboard.unknown-widget",
         "/deliveries/0/attachments/0/widget"),
        ("roles: [manager, agent]", "roles: [manager, boss]", "dashboard.unknown-role",
         "/deliveries/0/roles/1"),
        ("{period: last_7_days}", "{when: today}", "dashboard.unknown-filter",
         "/deliveries/0/filters/when"),
        ("{period: last_7_days}", "{period: last_8_days}", "dashboard.bad-filter-value",
         "/deliveries/0/filters/period"),
        ("    roles: [manager, agent]\n    users: [vic]\n", "", "report.no-recipients",
         "/deliveries/0"),
    ],
)  # fmt: skip
def test_bad_deliveries_are_definition_errors(
    tmp_path: Path, old: str, new: str, code: str, path: str
) -> None:
    assert old in DASHBOARD
    assert_problem(tmp_path, DASHBOARD.replace(old, new), code, path)


def assert_problem(tmp_path: Path, dashboard: str, code: str, path: str) -> None:
    from engine.bundles import load_bundle

    folder = write_bundle(tmp_path / "bad", **{"dashboards/ops.yaml": dashboard})
    with pytest.raises(DefinitionError) as caught:
        load_bundle(folder)
    found = [(p.code, p.path) for p in caught.value.problems]
    assert (code, path) in found, found
    assert all(p.source and p.source.endswith("ops.yaml") for p in caught.value.problems)


def test_monday_is_the_local_day() -> None:
    assert MONDAY_8.astimezone(SHANGHAI).date() == date(2026, 11, 30)
    assert MONDAY_8 == datetime(2026, 11, 30, 0, tzinfo=UTC)

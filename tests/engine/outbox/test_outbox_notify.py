"""notify(): in-app rows now, e-mail jobs for users with an address, keys deduplicate; the
e-mail jobs are delivered to a real local SMTP server and retried while it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.errors import EngineError, NotFoundError
from engine.jobs.worker import Worker, WorkerOptions
from engine.outbox import list_notifications, mark_read, notify
from engine.outbox.handlers import outbox_handlers
from engine.settings import Settings
from engine.storage.tables_jobs import job_queue
from tests.engine.outbox.receivers import smtp_receiver

QUICK = WorkerOptions(retry_base_seconds=0)


def _jobs(db: sa.Engine) -> list[sa.RowMapping]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(job_queue).order_by(job_queue.c.id)).mappings())


def test_notify_writes_in_app_rows_and_queues_email(
    migrated_engine: sa.Engine, recipients: dict[str, int]
) -> None:
    with migrated_engine.begin() as conn:
        created = notify(
            conn,
            user_ids=[recipients["ann"], recipients["cy"], recipients["ann"]],
            subject="Ticket T-1 assigned",
            body="You have a new ticket.",
            link="/apps/aftersales/ticket/1",
        )
    assert created == 2  # ann once, cy once
    jobs = _jobs(migrated_engine)
    assert [(j["kind"], j["payload"]["user_id"]) for j in jobs] == [
        ("outbox.email", recipients["ann"])  # cy has no address
    ]
    with migrated_engine.connect() as conn:
        [item] = list_notifications(conn, user_id=recipients["ann"])
    assert (item.subject, item.link, item.read_at) == (
        "Ticket T-1 assigned",
        "/apps/aftersales/ticket/1",
        None,
    )


def test_a_key_notifies_each_user_once(
    migrated_engine: sa.Engine, recipients: dict[str, int]
) -> None:
    for _ in range(2):
        with migrated_engine.begin() as conn:
            notify(conn, user_ids=[recipients["bob"]], subject="s", body="b", key="sla:7:warn")
    with migrated_engine.connect() as conn:
        assert len(list_notifications(conn, user_id=recipients["bob"])) == 1
    assert len(_jobs(migrated_engine)) == 1


def test_channels_select_in_app_or_email(
    migrated_engine: sa.Engine, recipients: dict[str, int]
) -> None:
    with migrated_engine.begin() as conn:
        assert (
            notify(conn, user_ids=[recipients["ann"]], subject="s", body="b", channels=["email"])
            == 0
        )
        assert (
            notify(conn, user_ids=[recipients["bob"]], subject="s", body="b", channels=["in_app"])
            == 1
        )
        with pytest.raises(EngineError) as caught:
            notify(conn, user_ids=[1], subject="s", body="b", channels=["sms"])
    assert caught.value.code == "outbox.unknown-channel"
    assert [j["payload"]["user_id"] for j in _jobs(migrated_engine)] == [recipients["ann"]]


def test_unread_first_and_mark_read(migrated_engine: sa.Engine, recipients: dict[str, int]) -> None:
    ann = recipients["ann"]
    with migrated_engine.begin() as conn:
        for n in range(3):
            notify(conn, user_ids=[ann], subject=f"n{n}", body="", channels=["in_app"])
        first = list_notifications(conn, user_id=ann)[-1]
        assert first.subject == "n0"
        read = mark_read(conn, user_id=ann, notification_id=first.id)
        assert read.read_at is not None
        assert mark_read(conn, user_id=ann, notification_id=first.id).read_at == read.read_at
        assert [n.subject for n in list_notifications(conn, user_id=ann)] == ["n2", "n1", "n0"]
        assert len(list_notifications(conn, user_id=ann, unread_only=True)) == 2
        with pytest.raises(NotFoundError) as caught:
            mark_read(conn, user_id=recipients["bob"], notification_id=first.id)
    assert caught.value.code == "outbox.notification-not-found"


def test_email_is_sent_over_smtp(migrated_engine: sa.Engine, recipients: dict[str, int]) -> None:
    with smtp_receiver() as (port, inbox):
        handlers = outbox_handlers(Settings(smtp_port=port, smtp_from="desk@example.test"))
        with migrated_engine.begin() as conn:
            notify(conn, user_ids=[recipients["ann"]], subject="Hello", body="Body", link="/t/1")
        assert Worker(migrated_engine, handlers=handlers, options=QUICK).drain() == 1
    [message] = inbox.messages
    assert (message["To"], message["From"], message["Subject"]) == (
        "ann@example.test",
        "desk@example.test",
        "Hello",
    )
    assert "Body" in message.get_payload() and "/t/1" in message.get_payload()
    assert inbox.envelopes == [("desk@example.test", ["ann@example.test"])]
    assert _jobs(migrated_engine)[0]["status"] == "done"


def test_email_is_retried_while_the_server_refuses(
    migrated_engine: sa.Engine, recipients: dict[str, int]
) -> None:
    with smtp_receiver() as (port, inbox):
        inbox.refuse_data = True
        handlers = outbox_handlers(Settings(smtp_port=port))
        with migrated_engine.begin() as conn:
            notify(conn, user_ids=[recipients["bob"]], subject="s", body="b")
        worker = Worker(migrated_engine, handlers=handlers, options=QUICK)
        worker.run_batch()
        [job] = _jobs(migrated_engine)
        assert (job["status"], job["attempts"]) == ("queued", 1)
        assert "451" in job["last_error"]
        inbox.refuse_data = False
        worker.run_batch()
    [job] = _jobs(migrated_engine)
    assert (job["status"], job["attempts"]) == ("done", 2)
    assert len(inbox.messages) == 1


def test_email_to_a_closed_port_fails_after_the_last_attempt(
    migrated_engine: sa.Engine, recipients: dict[str, int]
) -> None:
    with smtp_receiver() as (port, _inbox):
        pass  # the port is closed again
    handlers = outbox_handlers(Settings(smtp_port=port, smtp_timeout_seconds=1))
    with migrated_engine.begin() as conn:
        notify(conn, user_ids=[recipients["ann"]], subject="s", body="b")
        conn.execute(job_queue.update().values(max_attempts=2))
    Worker(migrated_engine, handlers=handlers, options=QUICK).drain()
    [job] = _jobs(migrated_engine)
    assert (job["status"], job["attempts"]) == ("failed", 2)
    assert "ConnectionRefusedError" in job["last_error"]
    assert job["finished_at"] - job["created_at"] < timedelta(seconds=30)

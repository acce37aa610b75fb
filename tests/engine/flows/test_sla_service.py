"""The SLA listener and job handlers on a real migrated database (SQLite, and PostgreSQL when
TANGRAM_TEST_DATABASE_URL is set): record writes through RecordService set the SLA fields,
schedule and cancel jobs, and the handlers warn, breach and escalate once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import NotFoundError
from engine.flows.sla_jobs import job_handlers
from engine.flows.sla_service import SlaService, sla_listener
from engine.forms.events import ChangeListener
from engine.forms.publish import publish_form
from engine.forms.service import RecordService
from engine.installer import import_bundle
from engine.jobs.types import JobContext
from engine.jobs.worker import Worker
from engine.registry import DefinitionRegistry
from engine.storage.tables_jobs import job_queue, outbox_notifications
from engine.storage.tables_sla import sla_clocks
from engine.storage.uow import UnitOfWork

SH = ZoneInfo("Asia/Shanghai")
HOURS = [
    f"- {{weekday: {d}, start: '{start}', end: '{end}'}}"
    for d in range(1, 6)
    for start, end in (("09:00", "12:00"), ("13:00", "18:00"))
]
BUNDLE = {
    "bundle.yaml": "key: slat\nname: SLA test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "calendars/office.yaml": "key: office\ntimezone: Asia/Shanghai\nweekly_hours:\n"
    + "\n".join(HOURS)
    + "\nholidays:\n- {date: '2025-03-05'}\n",
    "calendars/always.yaml": "key: always\nalways_open: true\n",
    "forms/customer.yaml": """
key: customer
label: Customer
fields:
  - {key: name, type: text, required: true}
  - {key: tier, type: select, options: [{key: vip, label: VIP}, {key: standard, label: Std}]}
  - {key: manager, type: user}
""",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - key: priority
    type: select
    options: [{key: urgent, label: U}, {key: high, label: H}, {key: low, label: L}]
    default: high
  - key: status
    type: select
    default: new
    options:
      - {key: new, label: New}
      - {key: in_progress, label: In progress}
      - {key: waiting, label: Waiting}
      - {key: resolved, label: Resolved}
      - {key: cancelled, label: Cancelled}
  - {key: customer, type: relation, form: customer}
  - {key: assignee, type: user}
  - {key: first_response_at, type: datetime}
  - {key: sla_policy, type: text, read_only: true}
  - {key: sla_start, type: datetime, read_only: true}
  - {key: hold_bsec, type: number, read_only: true}
  - {key: on_hold_since, type: datetime, read_only: true}
  - {key: escalation_level, type: number, read_only: true}
  - {key: response_by, type: datetime, read_only: true}
  - {key: response_warn_at, type: datetime, read_only: true}
  - {key: response_state, type: text, read_only: true}
  - {key: response_late_bsec, type: number, read_only: true}
  - {key: resolution_by, type: datetime, read_only: true}
  - {key: resolution_state, type: text, read_only: true}
""",
    "slas/ticket.yaml": """
key: ticket
form: ticket
select_by: priority
status_field: status
pause_statuses: [waiting]
stop_when: status = "cancelled"
warn_notify: [assignee]
fields: {policy: sla_policy, start: sla_start, hold: hold_bsec, on_hold_since: on_hold_since,
         escalation_level: escalation_level}
clocks:
  - key: response
    fulfilled_when: first_response_at != null
    pausable: false
    fields: {due: response_by, warn_at: response_warn_at, state: response_state,
             late: response_late_bsec}
  - key: resolution
    fulfilled_when: status = "resolved"
    fields: {due: resolution_by, state: resolution_state}
escalations:
  - {clock: response, level: 1, notify: [assignee, customer.manager]}
  - clock: resolution
    level: 2
    set: {priority: 'IF(priority = "low", "high", "urgent")'}
policies:
  - key: vip
    condition: customer.tier = "vip"
    calendar: always
    targets: {urgent: {response: 15, resolution: 60}, high: {response: 30, resolution: 120},
              low: {response: 60, resolution: 240}}
  - key: standard
    default: true
    calendar: office
    targets: {urgent: {response: 60, resolution: 240}, high: {response: 120, resolution: 480},
              low: {response: 240}}
""",
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


class Kit:
    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        listeners: list[ChangeListener] = []
        self.engine, self.clock = engine, clock
        registry = DefinitionRegistry()
        self.records = RecordService(db=engine, registry=registry, clock=clock, listeners=listeners)
        self.service = SlaService(self.records, registry)
        listeners.append(sla_listener(self.records, registry, service=self.service))
        self.handlers = job_handlers(self.service)

    def create(self, form: str, **data: Any) -> int:
        return self.records.create(app="slat", form=form, data=data, actor=None).record.id

    def update(self, record_id: int, **data: Any) -> dict[str, Any]:
        version = self.records.get(app="slat", form="ticket", record_id=record_id).record.version
        self.records.update(
            app="slat", form="ticket", record_id=record_id, data=data, actor=None, version=version
        )
        return self.get(record_id)  # the update's result predates the SLA's own write

    def get(self, record_id: int) -> dict[str, Any]:
        return self.records.get(app="slat", form="ticket", record_id=record_id).record.values

    def jobs(self, status: str = "queued") -> dict[str, datetime]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(job_queue.c.key, job_queue.c.due_at).where(
                    job_queue.c.status == status, job_queue.c.kind.like("sla.%")
                )
            ).all()
        return {str(key).split("@")[0].split(":")[-1]: due for key, due in rows}  # by clock

    def fire_due(self) -> int:
        """Run every job due by the clock with the real worker; returns how many ran."""
        return Worker(self.engine, handlers=self.handlers, clock=self.clock, name="t").drain()

    def notifications(self) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox_notifications.c.user_id, outbox_notifications.c.subject)
            ).all()
        return sorted((int(u), str(s)) for u, s in rows)


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=SH)


@pytest.fixture
def kit(
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    tmp_path: Path,
    make_user: Callable[..., Any],
) -> Kit:
    for name, text in BUNDLE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(tmp_path))
    return Kit(migrated_engine, Clock(sh(3, 9)))


def test_create_sets_fields_and_schedules_jobs(kit: Kit, make_user: Callable[..., Any]) -> None:
    agent = make_user("agent").id  # type: ignore[attr-defined]
    ticket = kit.create("ticket", subject="Broken", assignee=agent)
    values = kit.get(ticket)
    assert values["sla_policy"] == "standard"
    assert values["sla_start"] == sh(3, 9)
    assert values["response_by"] == sh(3, 11)
    assert values["response_warn_at"] == sh(3, 10, 30)
    assert values["resolution_by"] == sh(3, 18)  # 480 bmin
    assert values["response_state"] == "running"
    jobs = kit.jobs()
    assert jobs == {"response": sh(3, 10, 30), "resolution": sh(3, 16)}  # the warnings
    with kit.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(sla_clocks)).scalar_one()
    assert count == 1


def test_warning_breach_and_escalation_through_jobs(
    kit: Kit, make_user: Callable[..., Any]
) -> None:
    agent = make_user("agent").id  # type: ignore[attr-defined]
    boss = make_user("boss").id  # type: ignore[attr-defined]
    customer = kit.create("customer", name="ACME", tier="standard", manager=boss)
    ticket = kit.create("ticket", subject="Broken", assignee=agent, customer=customer)
    kit.clock.now = sh(3, 10, 31)
    assert kit.fire_due() == 1  # the response warning
    assert kit.get(ticket)["response_state"] == "warned"
    assert kit.notifications() == [(agent, f"SLA warning: ticket #{ticket} response")]
    assert kit.fire_due() == 0
    kit.clock.now = sh(3, 11, 30)
    assert kit.fire_due() == 1  # the response breach
    values = kit.get(ticket)
    assert values["response_state"] == "breached"
    assert values["escalation_level"] == 1
    assert values["response_late_bsec"] == 30 * 60
    escalated = [n for n in kit.notifications() if "escalated" in n[1]]
    assert sorted(u for u, _ in escalated) == sorted([agent, boss])
    # the resolution breach raises the priority one step without moving the deadline
    kit.clock.now = sh(3, 18, 1)
    kit.fire_due()
    values = kit.get(ticket)
    assert (values["priority"], values["escalation_level"]) == ("urgent", 2)
    assert values["resolution_by"] == sh(3, 18)
    assert values["resolution_state"] == "breached"


def test_stale_job_does_nothing(kit: Kit) -> None:
    ticket = kit.create("ticket", subject="Broken")
    kit.clock.now = sh(3, 9, 30)
    kit.update(ticket, first_response_at=sh(3, 9, 30), status="in_progress")
    assert kit.get(ticket)["response_state"] == "met"
    # the old response jobs were cancelled; run a copy of one anyway
    with UnitOfWork(kit.engine, clock=kit.clock) as uow:
        payload = {"app": "slat", "form": "ticket", "record_id": ticket, "sla": "ticket"}
        kit.clock.now = sh(3, 11, 5)
        kit.handlers["sla.breach"](JobContext(uow, 0, "sla.breach", payload, 1, kit.clock(), "t"))
        uow.commit()
    values = kit.get(ticket)
    assert values["response_state"] == "met" and values["escalation_level"] == 0
    assert kit.notifications() == []
    assert "response" in kit.jobs("cancelled")


def test_pause_holds_and_resumes_on_the_office_calendar(kit: Kit) -> None:
    ticket = kit.create("ticket", subject="Broken", first_response_at=sh(3, 9))
    kit.clock.now = sh(3, 10)
    values = kit.update(ticket, status="waiting")
    assert values["resolution_state"] == "paused" and values["on_hold_since"] == sh(3, 10)
    assert set(kit.jobs()) == set()  # nothing can fire while paused
    kit.clock.now = sh(6, 10)  # Thursday; Wednesday the 5th is a holiday
    values = kit.update(ticket, status="in_progress")
    assert values["hold_bsec"] == 16 * 3600  # Mon 10–18 less lunch, Tue, Thu 9–10
    assert values["resolution_by"] == sh(6, 18)  # D(start, 8 h + 16 h) skipping the holiday
    assert kit.jobs() == {"resolution": sh(6, 16)}  # its warning


def test_policy_from_a_related_record_and_recompute(kit: Kit) -> None:
    customer = kit.create("customer", name="Big", tier="vip")
    ticket = kit.create("ticket", subject="Down", customer=customer)
    values = kit.get(ticket)
    assert values["sla_policy"] == "vip"
    assert values["response_by"] == sh(3, 9, 30)  # 7x24
    kit.clock.now = sh(3, 9, 20)
    values = kit.update(ticket, priority="urgent")
    assert values["response_by"] == sh(3, 9, 15)  # from the original start: past, so breached
    assert values["response_state"] == "breached"
    assert values["escalation_level"] == 1


def test_cancel_and_delete_stop_the_jobs(kit: Kit) -> None:
    first = kit.create("ticket", subject="A")
    second = kit.create("ticket", subject="B")
    assert len(kit.jobs()) == 2
    kit.update(first, status="cancelled")
    kit.records.delete(app="slat", form="ticket", record_id=second, actor=None)
    assert kit.jobs() == {}
    kit.clock.now = sh(3, 9, 10)
    assert kit.fire_due() == 0
    with pytest.raises(NotFoundError):
        kit.get(second)
    kit.records.restore(app="slat", form="ticket", record_id=second, actor=None)
    assert kit.jobs() == {"response": sh(3, 10, 30), "resolution": sh(3, 16)}  # running again


def test_writes_roll_back_with_a_failing_transaction(kit: Kit) -> None:
    with pytest.raises(RuntimeError), UnitOfWork(kit.engine, clock=kit.clock) as uow:
        writer = kit.records.writer(uow, source="api", depth=0)
        writer.create("slat", "ticket", {"subject": "x"}, actor=None)
        raise RuntimeError("the caller fails after the write")
    with kit.engine.connect() as conn:
        assert conn.execute(sa.select(sla_clocks)).all() == []
    assert kit.jobs() == {}


def test_sweep_time_after_downtime_fires_everything_due_once(kit: Kit) -> None:
    ticket = kit.create("ticket", subject="Broken", first_response_at=None)
    kit.clock.now = sh(3, 9) + timedelta(days=14)
    kit.fire_due()
    values = kit.get(ticket)
    assert values["response_state"] == "breached" and values["resolution_state"] == "breached"
    assert values["escalation_level"] == 2
    assert kit.fire_due() == 0


def test_recompute_after_a_calendar_change(
    kit: Kit, migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    ticket = kit.create("ticket", subject="Broken")
    assert kit.get(ticket)["resolution_by"] == sh(3, 18)
    changed = dict(BUNDLE)
    changed["calendars/office.yaml"] = changed["calendars/office.yaml"].replace(
        "holidays:\n", "holidays:\n- {date: '2025-03-03'}\n"
    )
    folder = tmp_path / "changed"
    for name, text in changed.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    with UnitOfWork(kit.engine, clock=kit.clock) as uow:
        assert kit.service.recompute(uow, app="slat", now=kit.clock()) == 1
        uow.commit()
    values = kit.get(ticket)
    assert values["resolution_by"] == sh(4, 18)  # Monday became a holiday
    assert kit.jobs()["resolution"] == sh(4, 16)  # warning at 75 % of 480 bmin


ADDRESS = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": "文三路 1 号"}


def test_shipped_after_sales_sla_on_the_ticket_form(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    root = Path(__file__).resolve().parents[3]
    import_bundle(db=migrated_engine, bundle=load_bundle(root / "templates" / "aftersales"))
    kit = Kit(migrated_engine, Clock(datetime(2025, 9, 30, 17, tzinfo=SH)))

    def create(form: str, **data: Any) -> int:
        return kit.records.create(app="aftersales", form=form, data=data, actor=None).record.id

    def ticket(customer: int, contact: int, **extra: Any) -> dict[str, Any]:
        data = {
            "subject": "Compressor stops",
            "description": "It stops after ten minutes.",
            "channel": "phone",
            "ticket_type": "tech_support",
            "priority": "high",
            "customer": customer,
            "contact": contact,
            **extra,
        }
        record_id = create("ticket", **data)
        return kit.records.get(app="aftersales", form="ticket", record_id=record_id).record.values

    plain = create("customer", code="C1", name="ACME", customer_type="company", address=ADDRESS)
    vip = create(
        "customer", code="C2", name="Big", customer_type="company", address=ADDRESS, tier="vip"
    )
    contact = create("contact", name="Zhang", customer=plain, mobile="13800138000")
    values = ticket(plain, contact)
    # standard, high: 120 / 960 / 960 bmin on CN-8x5, over the National Day holidays
    assert values["response_by"] == datetime(2025, 10, 9, 10, tzinfo=SH)
    assert values["response_warn_at"] == datetime(2025, 10, 9, 9, 30, tzinfo=SH)
    assert values["resolution_by"] == datetime(2025, 10, 10, 17, tzinfo=SH)  # 1 h + 8 h + 7 h
    assert (values["response_state"], values["onsite_state"]) == ("running", "running")
    assert values["response_target_sec"] == 120 * 60 and values["hold_bsec"] == 0
    vip_contact = create("contact", name="Li", customer=vip, mobile="13900139000")
    values = ticket(vip, vip_contact)
    assert values["response_target_sec"] == 30 * 60  # the VIP policy, through customer.tier
    assert values["response_by"] == datetime(2025, 9, 30, 17, 30, tzinfo=SH)


def test_a_field_dropped_from_the_form_is_skipped(kit: Kit, migrated_engine: sa.Engine) -> None:
    ticket = kit.create("ticket", subject="Broken")
    spec = kit.records.definition(app="slat", form="ticket").compiled.spec
    fields = tuple(f for f in spec.fields if f.key != "response_warn_at")
    publish_form(
        db=migrated_engine, app="slat", spec=spec.model_copy(update={"fields": fields}), actor=None
    )
    kit.clock.now = sh(3, 9, 30)
    values = kit.update(ticket, priority="urgent")  # the SLA still writes its other fields
    assert values["response_by"] == sh(3, 10)
    assert "response_warn_at" not in values

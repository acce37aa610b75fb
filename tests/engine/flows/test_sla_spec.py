"""SLA and calendar definitions checked at bundle load: every problem at once, with paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bundles import load_bundle
from engine.errors import DefinitionError
from engine.flows.sla_spec import SlaSpec

ROOT = Path(__file__).resolve().parents[3]

FORM = """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text}
  - key: priority
    type: select
    options: [{key: high, label: H}, {key: low, label: L}]
  - key: status
    type: select
    options: [{key: open, label: O}, {key: waiting, label: W}, {key: done, label: D}]
  - {key: assignee, type: user}
  - {key: due_at, type: datetime}
  - {key: level, type: number}
"""

BROKEN_SLA = """
key: ticket
form: ticket
select_by: priorty
status_field: status
pause_statuses: [waiting, sleeping]
warn_notify: [subject]
fields: {start: subject, escalation_level: level}
clocks:
  - key: response
    fulfilled_when: subject
    fields: {due: due_at, late: nothing}
  - key: response
    fulfilled_when: status = "done" and
escalations:
  - {clock: resolve, level: 1, notify: [assignee], set: {level: 'subject +'}}
policies:
  - key: fast
    calendar: office
    targets: {high: {response: 30, answer: 60}, medium: {response: 60}}
  - key: slow
    condition: LEN(subject)
    calendar: nowhere
    targets: {low: {response: 60}}
"""

CALENDAR = """
key: office
weekly_hours: [{weekday: 1, start: '09:00', end: '17:00'}]
"""


def _bundle(tmp_path: Path, files: dict[str, str]) -> Path:
    files = {"bundle.yaml": "key: t\nname: T\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n", **files}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip(), encoding="utf-8")
    return tmp_path


def test_shipped_ticket_sla_checks_against_the_ticket_form() -> None:
    bundle = load_bundle(ROOT / "templates" / "aftersales")
    spec = bundle.definitions["slas"]["ticket"]
    assert isinstance(spec, SlaSpec)
    assert [p.key for p in spec.policies] == ["pm", "complaint", "c7x24", "vip", "standard"]
    assert set(bundle.definitions["calendars"]) == {"cn_8x5", "always"}


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    folder = _bundle(
        tmp_path,
        {
            "forms/ticket.yaml": FORM,
            "slas/ticket.yaml": BROKEN_SLA,
            "calendars/office.yaml": CALENDAR,
        },
    )
    with pytest.raises(DefinitionError) as caught:
        load_bundle(folder)
    found = {(p.code, p.path) for p in caught.value.problems}
    assert all(p.source == "slas/ticket.yaml" for p in caught.value.problems)
    assert found == {
        ("sla.unknown-field", "/select_by"),
        ("sla.unknown-option", "/pause_statuses/1"),
        ("sla.field-type", "/warn_notify/0"),
        ("sla.field-type", "/fields/start"),
        ("sla.expression-type", "/clocks/0/fulfilled_when"),
        ("sla.unknown-field", "/clocks/0/fields/late"),
        ("sla.duplicate-key", "/clocks/1/key"),
        ("sla.bad-expression", "/clocks/1/fulfilled_when"),
        ("sla.default-policy", "/policies"),
        ("sla.missing-condition", "/policies/0"),
        ("sla.unknown-clock", "/policies/0/targets/high/answer"),
        ("sla.expression-type", "/policies/1/condition"),
        ("bundle.unknown-reference", "/policies/1/calendar"),
        ("sla.unknown-clock", "/escalations/0/clock"),
        ("sla.bad-expression", "/escalations/0/set/level"),
    }


def test_calendar_problems_fail_the_bundle_with_paths(tmp_path: Path) -> None:
    bad = CALENDAR + "holidays: [{date: '2025-03-08'}]\nworkday_overrides: [{date: '2025-03-08'}]\n"
    folder = _bundle(tmp_path, {"calendars/office.yaml": bad})
    with pytest.raises(DefinitionError) as caught:
        load_bundle(folder)
    [problem] = caught.value.problems
    assert (problem.code, problem.path, problem.source) == (
        "calendar.date-conflict",
        "/workday_overrides/0/date",
        "calendars/office.yaml",
    )

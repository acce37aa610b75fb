"""The committed JSON Schemas are current, valid, and accept (or reject) what the models do."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.errors import DefinitionError
from engine.schemas import KINDS, available_kinds, model_for, render_schema, validate_definition

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
BUNDLE = ROOT / "templates" / "aftersales"

SAMPLES: dict[str, dict[str, Any]] = {
    "flow": {
        "key": "ticket_lifecycle",
        "label": {"en": "Ticket lifecycle", "zh": "工单生命周期"},
        "form": "ticket",
        "trigger": {"type": "record_created", "form": "ticket"},
        "nodes": [
            {"type": "start", "key": "start"},
            {"type": "action", "key": "intake", "actions": [
                {"type": "set_fields", "values": {"status": '"new"'}},
                {"type": "notify", "to": [{"type": "field", "value": "assignee"}],
                 "channels": ["in_app", "email"]},
                {"type": "webhook", "url": "https://erp.example.com/hook", "retries": 3}]},
            {"type": "condition", "key": "is_vip", "branches": [
                {"key": "vip", "expr": 'customer.tier = "vip"', "to": "handle"},
                {"key": "other", "default": True, "to": "handle"}]},
            {"type": "user_task", "key": "handle", "kind": "handle", "mode": "any",
             "assignees": [{"type": "role", "value": "agent"}],
             "field_permissions": {"resolution_code": "required", "channel": "read"},
             "timeout": {"after": "PT4H", "business_time": True, "action": "escalate"}},
            {"type": "timer", "key": "cool_off", "delay": "P7D"},
            {"type": "end", "key": "done"},
        ],
        "edges": [
            {"from": "start", "to": "intake"},
            {"from": "intake", "to": "is_vip"},
            {"from": "handle", "to": "cool_off"},
            {"from": "cool_off", "to": "done"},
        ],
    },
    "report": {
        "key": "backlog_by_team",
        "label": "Backlog by team",
        "dataset": {"form": "ticket", "joins": [{"relation": "team"}]},
        "dimensions": [{"key": "team", "field": "team.name"},
                       {"key": "week", "field": "created_at", "grain": "week"}],
        "measures": [{"key": "open", "aggregate": "count",
                      "filter": 'status_category = "open"'},
                     {"key": "met", "aggregate": "count", "filter": 'resolution_state = "met"'},
                     {"key": "breached", "aggregate": "count",
                      "filter": 'resolution_state = "breached"'},
                     {"key": "rate", "expr": "met / (met + breached)", "format": "percent"}],
        "filters": [{"expr": 'status <> "cancelled"'}],
        "sort": [{"by": "open", "direction": "desc"}],
        "limit": 20,
        "chart": {"type": "bar", "x": "team", "y": ["open"], "stack": "stacked"},
    },
    "dashboard": {
        "key": "cockpit",
        "label": {"en": "Cockpit", "zh": "驾驶舱"},
        "widgets": [{"key": "backlog", "report": "backlog_by_team", "x": 0, "y": 0, "w": 12,
                     "h": 6}],
        "filters": [{"key": "period", "label": "Period", "type": "date_range",
                     "bindings": {"backlog": "created_at"}}],
        "refresh_seconds": 300,
    },
    "role": {
        "key": "agent",
        "label": {"en": "Agent", "zh": "客服坐席"},
        "permissions": [
            {"form": "ticket", "actions": ["create", "read", "update"], "scope": "assigned",
             "fields": {"billable": "read", "sla_policy": "hidden"}},
            {"form": "customer", "scope": "expr", "scope_expr": 'region = "east"'},
        ],
    },
    "menu": {
        "key": "main",
        "label": "After-sales",
        "items": [
            {"key": "service", "label": "Service", "items": [
                {"key": "tickets", "label": "Tickets", "form": "ticket"},
                {"key": "cockpit", "label": "Cockpit", "dashboard": "cockpit"}]},
            {"key": "help", "label": "Help", "url": "https://example.com/help"},
        ],
    },
}  # fmt: skip


@functools.cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _documents() -> list[tuple[str, Path]]:
    docs = [("form", path) for path in sorted((BUNDLE / "forms").glob("*.yaml"))]
    docs.append(("option_sets", BUNDLE / "data" / "option_sets.yaml"))
    if "bundle" in available_kinds():
        docs.append(("bundle", BUNDLE / "bundle.yaml"))
    return docs


@pytest.mark.parametrize("kind", available_kinds())
def test_committed_schema_is_current(kind: str) -> None:
    path = SCHEMAS / f"{kind}.schema.json"
    assert path.exists(), "run: python -m engine.schemas"
    assert path.read_text(encoding="utf-8") == render_schema(kind), (
        f"{path.name} is stale; run: python -m engine.schemas"
    )


def test_every_kind_has_a_model() -> None:
    assert set(available_kinds()) >= set(KINDS) - {"bundle"}


@pytest.mark.parametrize(("kind", "path"), _documents(), ids=lambda v: getattr(v, "name", v))
def test_shipped_documents_match_schema(kind: str, path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    _validator(kind).validate(data)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_samples_match_schema_and_model(kind: str) -> None:
    data = SAMPLES[kind]
    _validator(kind).validate(data)
    spec = validate_definition(kind, data)
    dumped = spec.model_dump(mode="json", exclude_defaults=True)
    assert model_for(kind).model_validate(dumped) == spec
    _validator(kind).validate(dumped)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("form", {"key": "x", "label": "X", "fields": [{"type": "colour", "key": "a"}]}),
        ("form", {"key": "x", "label": "X", "fields": [], "extra": 1}),
        ("flow", {**SAMPLES["flow"], "nodes": [{"type": "teleport", "key": "a"}]}),
        ("menu", {"key": "Main", "label": "M"}),
    ],
)
def test_schema_and_model_reject_the_same(kind: str, data: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator(kind).validate(data)
    with pytest.raises(DefinitionError):
        validate_definition(kind, data)


def test_flow_problem_paths() -> None:
    data = {**SAMPLES["flow"], "edges": [{"from": "start", "to": "x", "colour": 1}]}
    with pytest.raises(DefinitionError) as info:
        validate_definition("flow", data, source="flows/ticket_lifecycle.yaml")
    [problem] = info.value.problems
    assert (problem.code, problem.path) == ("bundle.unknown-key", "/edges/0/colour")
    assert problem.source == "flows/ticket_lifecycle.yaml"


def test_record_trigger_needs_a_form() -> None:
    data = {**SAMPLES["flow"], "trigger": {"type": "record_created"}}
    validate_definition("flow", data)  # the flow's own form serves
    data.pop("form")
    with pytest.raises(DefinitionError) as info:
        validate_definition("flow", data)
    assert [(p.code, p.path) for p in info.value.problems] == [("flow.missing-option", "")]

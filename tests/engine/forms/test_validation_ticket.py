"""The after-sales ticket form, compiled from the bundle: a real ticket passes, a bad one fails."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.bundles import load_bundle
from engine.errors import SubmissionError
from engine.forms import FormSpec, OptionSetsFile, compile_form
from engine.forms.compiler import CompiledForm
from engine.forms.validation import EvalContext, validate_submission

BUNDLE = Path(__file__).resolve().parents[3] / "templates" / "aftersales"
CONTEXT = EvalContext(
    now=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC), actor=5, timezone="Asia/Shanghai"
)


@pytest.fixture(scope="module")
def ticket() -> CompiledForm:
    bundle = load_bundle(BUNDLE)
    forms: dict[str, Any] = dict(bundle.definitions["forms"])
    text = bundle.files["data/option_sets.yaml"].decode("utf-8")
    sets = {s.key: s for s in OptionSetsFile.model_validate(yaml.safe_load(text)).option_sets}
    spec = forms["ticket"]
    assert isinstance(spec, FormSpec)
    return compile_form(spec, forms=forms, option_sets=sets)


def intake(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "Compressor trips after 10 minutes",
        "description": "Unit SN-1 trips the breaker; error E07 on the display.",
        "channel": "phone",
        "ticket_type": "repair",
        "customer": 11,
        "contact": 21,
        "device": 31,
        "priority": "high",
        "site_address": {
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "detail": "文三路 90 号",
        },
        "attachments": [
            {
                "id": "f-1",
                "name": "display.jpg",
                "size": 120_000,
                "content_type": "image/jpeg",
                "sha256": "0" * 64,
            }
        ],
        **extra,
    }


def test_realistic_ticket_is_accepted(ticket: CompiledForm) -> None:
    related = {"device.product_model": 41, "product_line": "compressor"}
    record = validate_submission(ticket, intake(), current=None, context=CONTEXT, related=related)
    assert record["status"] == "new"  # default
    assert record["status_category"] == "open"  # formula
    assert record["region"] == "east"  # formula over the address
    assert record["product_model"] == 41  # default_expr through the device
    assert record["billable"] is False
    assert record["hold_bsec"] == Decimal(0)
    assert record["parts_cost"] == Decimal("0.00")
    assert "batch_no" not in record and "product_line" not in record  # lookups are not stored


def test_resolving_needs_the_resolution_fields(ticket: CompiledForm) -> None:
    stored = validate_submission(ticket, intake(), current=None, context=CONTEXT)
    stored = {**stored, "id": 100, "number": "WO-202611-000001"}
    with pytest.raises(SubmissionError) as info:
        validate_submission(ticket, {"status": "resolved"}, current=stored, context=CONTEXT)
    assert sorted((e.loc, e.code) for e in info.value.errors) == [
        ("fault_code", "submission.required"),
        ("resolution_code", "submission.required"),
        ("resolution_notes", "submission.required"),
        ("root_cause", "submission.required"),
    ]
    done = {
        "status": "resolved",
        "fault_code": "E07",
        "resolution_code": "part_replaced",
        "resolution_notes": "Replaced the relay.",
        "root_cause": "Worn relay",
    }
    record = validate_submission(ticket, done, current=stored, context=CONTEXT)
    assert record["status_category"] == "resolved"
    assert record["problem_category"] == "hardware"
    assert record["number"] == "WO-202611-000001"


def test_bad_ticket_reports_every_problem(ticket: CompiledForm) -> None:
    stored = {**validate_submission(ticket, intake(), current=None, context=CONTEXT), "id": 100}
    bad = intake(
        subject="x" * 201,
        ticket_type="teleport",
        customer="eleven",
        device=None,
        priority=None,
        sentiment_score=2,
        site_address={"province": "浙江省", "planet": "Mars"},
        region="north",
        parent_ticket=100,
        colour="red",
    )
    with pytest.raises(SubmissionError) as info:
        validate_submission(ticket, bad, current=stored, context=CONTEXT)
    assert sorted((e.loc, e.code) for e in info.value.errors) == [
        ("colour", "submission.unknown-field"),
        ("customer", "submission.wrong-type"),
        ("device", "submission.required"),  # a repair needs a device
        ("parent_ticket", "validation.parent_is_self"),
        ("priority", "submission.required"),
        ("region", "submission.read-only"),
        ("sentiment_score", "submission.out-of-range"),
        ("site_address/planet", "submission.unknown-field"),
        ("subject", "submission.too-long"),
        ("ticket_type", "submission.unknown-option"),
    ]


def test_controller_fields_follow_visibility(ticket: CompiledForm) -> None:
    related = {"product_line": "controller"}
    support = intake(ticket_type="tech_support", firmware_version="2.1.0")
    with pytest.raises(SubmissionError) as info:
        validate_submission(ticket, support, current=None, context=CONTEXT, related=related)
    assert [(e.loc, e.code) for e in info.value.errors] == [
        ("repro_steps", "submission.required"),
        ("screenshots", "submission.required"),
    ]
    with pytest.raises(SubmissionError) as info:
        validate_submission(ticket, support, current=None, context=CONTEXT)  # not a controller
    assert [(e.loc, e.code) for e in info.value.errors] == [
        ("firmware_version", "submission.hidden-field")
    ]


def test_model_must_match_the_device(ticket: CompiledForm) -> None:
    related = {"device.product_model": 41}
    with pytest.raises(SubmissionError) as info:
        validate_submission(
            ticket, intake(product_model=42), current=None, context=CONTEXT, related=related
        )
    assert [(e.loc, e.code) for e in info.value.errors] == [
        ("product_model", "validation.model_mismatch")
    ]

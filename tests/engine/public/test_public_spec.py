"""Public link specs: shape checks (pure) and checks against a form (no database)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.errors import SubmissionError
from engine.forms.spec import FormSpec
from engine.public.checks import check_link
from engine.public.spec import PublicLinkSpec

DEVICE = FormSpec.model_validate(
    {
        "key": "device",
        "label": "Device",
        "fields": [
            {"key": "qr_token", "type": "text"},
            {"key": "size", "type": "number"},
            {"key": "model", "type": "text"},
        ],
    }
)
REQUEST = FormSpec.model_validate(
    {
        "key": "request",
        "label": "Request",
        "fields": [
            {"key": "subject", "type": "text"},
            {"key": "device", "type": "relation", "form": "device"},
            {"key": "model", "type": "text"},
            {"key": "photo", "type": "image"},
            {"key": "total", "type": "formula", "result_type": "text", "expr": "subject"},
        ],
    }
)
FORMS = {"device": DEVICE, "request": REQUEST}


def _errors(body: dict[str, Any]) -> set[tuple[str, str]]:
    with pytest.raises(SubmissionError) as raised:
        check_link(PublicLinkSpec.model_validate(body), form=REQUEST, forms=FORMS)
    return {(e.loc, e.code) for e in raised.value.errors}


def test_a_qr_link_fits() -> None:
    spec = PublicLinkSpec.model_validate(
        {
            "fields": ["subject"],
            "lookup": {
                "relation": "device",
                "by": "qr_token",
                "param": "qr",
                "copy": {"model": "model"},
            },
            "trackable": ["subject", "total"],
        }
    )
    check_link(spec, form=REQUEST, forms=FORMS)
    assert spec.options()["lookup"]["copy"] == {"model": "model"}


def test_every_problem_is_reported_with_its_path() -> None:
    assert _errors(
        {
            "fields": ["photo", "total", "device"],
            "prefill": {"total": {"value": "x"}},
            "lookup": {
                "relation": "device",
                "by": "size",
                "param": "qr",
                "copy": {"subject": "nope"},
            },
        }
    ) == {
        ("fields/0", "public.field-not-fillable"),
        ("fields/1", "public.field-not-fillable"),
        ("fields/2", "public.field-not-fillable"),
        ("prefill/total", "public.field-not-fillable"),
        ("lookup/by", "public.bad-lookup"),
        ("lookup/copy/subject", "public.unknown-field"),
        ("lookup/relation", "public.bad-lookup"),
    }


@pytest.mark.parametrize(
    "body",
    [
        {"fields": []},
        {"fields": ["subject"], "prefill": {"model": {}}},
        {"fields": ["subject"], "prefill": {"model": {"param": "bad param"}}},
        {"fields": ["subject"], "limits": {"per_client": 0}},
        {"fields": ["subject"], "extra": 1},
    ],
)
def test_malformed_specs_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PublicLinkSpec.model_validate(body)

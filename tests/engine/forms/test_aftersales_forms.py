"""The after-sales forms and option sets: valid, compiled without problems, lossless dump."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.forms import FormSpec, OptionSetsFile, compile_form

BUNDLE = Path(__file__).resolve().parents[3] / "templates" / "aftersales"
FORM_FILES = sorted((BUNDLE / "forms").glob("*.yaml"))
REQUIRED = {"customer", "product_model", "device", "ticket"}


def _load(path: Path) -> FormSpec:
    return FormSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def forms() -> dict[str, FormSpec]:
    return {path.stem: _load(path) for path in FORM_FILES}


@pytest.fixture(scope="module")
def option_sets() -> dict[str, object]:
    text = (BUNDLE / "data" / "option_sets.yaml").read_text(encoding="utf-8")
    return {s.key: s for s in OptionSetsFile.model_validate(yaml.safe_load(text)).option_sets}


def test_required_forms_present(forms: dict[str, FormSpec]) -> None:
    assert REQUIRED <= set(forms)


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_key_matches_file(path: Path) -> None:
    assert _load(path).key == path.stem


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_compiles_without_problems(path: Path, forms, option_sets) -> None:
    compiled = compile_form(forms[path.stem], forms=forms, option_sets=option_sets)
    assert compiled.key == path.stem


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_dump_load_round_trip(path: Path) -> None:
    spec = _load(path)
    dumped = spec.model_dump(mode="json", exclude_defaults=True)
    again = FormSpec.model_validate(dumped)
    assert again == spec
    assert again.model_dump(mode="json", exclude_defaults=True) == dumped


def test_option_sets_round_trip() -> None:
    data = yaml.safe_load((BUNDLE / "data" / "option_sets.yaml").read_text(encoding="utf-8"))
    parsed = OptionSetsFile.model_validate(data)
    assert OptionSetsFile.model_validate(parsed.model_dump(mode="json")) == parsed
    keys = {s.key for s in parsed.option_sets}
    assert keys >= {"region", "customer_tier", "priority", "channel", "ticket_type",
                    "product_line", "skill", "fault_code", "resolution_code"}  # fmt: skip


def test_ticket_formulas_in_dependency_order(forms, option_sets) -> None:
    compiled = compile_form(forms["ticket"], forms=forms, option_sets=option_sets)
    assert set(compiled.formula_order) == {"region", "billable", "problem_category",
                                           "status_category"}  # fmt: skip
    assert compiled.fields["number"].pattern == "WO-{YYYYMM}-{######}"  # type: ignore[union-attr]


def test_device_warranty_expiry_after_its_inputs(forms, option_sets) -> None:
    order = compile_form(forms["device"], forms=forms, option_sets=option_sets).formula_order
    assert order.index("warranty_expiry") < order.index("coverage_status")


@pytest.mark.parametrize(
    "condition",
    [
        'ticket_type = "pm"',
        'ticket_type = "complaint"',
        'contract.sla_policy.code = "C7X24"',
        'customer.tier = "vip"',
        'device.product_model.product_line = "controller"',
    ],
)
def test_seeded_sla_conditions_type_check_on_tickets(forms, option_sets, condition: str) -> None:
    from engine.expr import ExprType, check, parse

    catalog = compile_form(forms["ticket"], forms=forms, option_sets=option_sets).catalog
    assert check(parse(condition), catalog) == ExprType.BOOLEAN


def test_field_service_forms(forms, option_sets) -> None:
    """§2.10–2.12, 2.15: the activity log is append-only; visit formulas in dependency order."""
    assert forms["ticket_activity"].append_only is True
    assert not forms["field_visit"].append_only
    visit = compile_form(forms["field_visit"], forms=forms, option_sets=option_sets)
    assert visit.formula_order == ("sequence", "check_in_far", "labour_min")
    items = next(f for f in forms["field_visit"].fields if f.key == "items")
    assert [f.key for f in items.fields][-1] == "amount"  # type: ignore[union-attr]
    consumption = compile_form(forms["part_consumption"], forms=forms, option_sets=option_sets)
    assert consumption.formula_order == ("cost",)


@pytest.mark.parametrize(
    ("form", "data", "missing"),
    [
        ("ticket_activity", {"ticket": 1, "kind": "call_in", "handle_sec": 120}, set()),
        ("ticket_activity", {"ticket": 1, "kind": "call_in"}, {"handle_sec"}),  # AHT input
        ("ticket_activity", {"ticket": 1, "kind": "status_change"}, {"to_status"}),
        ("field_visit", {"ticket": 1, "visit_type": "repair"}, set()),  # pending dispatch
        (
            "field_visit",
            {"ticket": 1, "visit_type": "repair", "status": "dispatched"},
            {"engineer", "scheduled_start", "scheduled_end"},
        ),
    ],
)
def test_field_service_conditional_requirements(
    forms, option_sets, form: str, data: dict[str, object], missing: set[str]
) -> None:
    import datetime as dt

    from engine.errors import SubmissionError
    from engine.forms.validation import EvalContext, validate_submission

    compiled = compile_form(forms[form], forms=forms, option_sets=option_sets)
    now = dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC)
    context = EvalContext(now=now, actor=5, timezone="UTC")
    try:
        validate_submission(compiled, data, current=None, context=context)
    except SubmissionError as err:
        assert {(e.loc, e.code) for e in err.errors} == {
            (k, "submission.required") for k in missing
        }
    else:
        assert not missing

"""Publish checks of match_rule and pick_assignee: unknown forms and fields of the forms they
read and write, reported together with their JSON pointers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.engine.flows.test_assign_routing import FILES


def test_publish_reports_unknown_forms_and_fields_with_paths() -> None:
    import yaml

    from engine.errors import DefinitionError
    from engine.flows.assign_checks import form_fields_of
    from engine.flows.checks import FlowContext
    from engine.flows.compiler import compile_flow
    from engine.flows.spec import FlowSpec
    from engine.forms.spec import FormSpec

    text = FILES["flows/route.yaml"]
    text = text.replace("form: rule", "form: rules").replace("order_by: seq", "order_by: rank")
    text = text.replace("{by: stamp}", "{by: stamped}").replace("field: grps", "field: groups")
    text = text.replace("set: {grp: $rule.target", "set: {group: $rule.target")
    text = text.replace("where: status =", "where: (status =")
    spec = FlowSpec.model_validate(yaml.safe_load(text))
    forms = [FormSpec.model_validate(yaml.safe_load(FILES[f"forms/{k}.yaml"])) for k in
             ("case", "rule", "person", "grp")]  # fmt: skip
    ctx = FlowContext(forms=frozenset({"case", "rule", "person", "grp"}),
                      form_fields=form_fields_of(forms))  # fmt: skip
    with pytest.raises(DefinitionError) as caught:
        compile_flow(spec, ctx=ctx)
    found = {(p.code, p.path) for p in caught.value.problems}
    assert found == {
        ("flow.unknown-form", "/nodes/1/actions/0/form"),
        ("flow.unknown-field", "/nodes/2/actions/0/filters/0/field"),
        ("flow.unknown-field", "/nodes/2/actions/0/rank/2/by"),
        ("expr.syntax", "/nodes/2/actions/0/load/where"),
    }
    ctx = FlowContext(forms=ctx.forms, form_fields=ctx.form_fields, catalog=_case_catalog(forms))
    with pytest.raises(DefinitionError) as caught:
        compile_flow(spec, ctx=ctx)
    assert ("flow.unknown-field", "/nodes/1/actions/0/set/group") in {
        (p.code, p.path) for p in caught.value.problems
    }
    text = FILES["flows/route.yaml"].replace("order_by: seq", "order_by: rank")
    spec = FlowSpec.model_validate(yaml.safe_load(text))
    with pytest.raises(DefinitionError) as caught:
        compile_flow(spec, ctx=ctx)
    assert [(p.code, p.path) for p in caught.value.problems] == [
        ("flow.unknown-field", "/nodes/1/actions/0/order_by")
    ]


def _case_catalog(forms: list[Any]) -> Any:
    from engine.flows.checks import FLOW_VARIABLES
    from engine.forms._catalog import build_catalog
    from engine.forms.compiler import compile_form

    by_key = {f.key: f for f in forms}
    return {**build_catalog(FLOW_VARIABLES), **compile_form(by_key["case"], forms=by_key).catalog}


def test_rank_keys_need_what_they_rank_by() -> None:
    import yaml

    from engine.errors import DefinitionError
    from engine.flows.checks import FlowContext
    from engine.flows.compiler import compile_flow
    from engine.flows.spec import FlowSpec

    text = FILES["flows/route.yaml"]
    text = text.replace("          - {test: skills, reason: unskilled, field: skills, value: "
                        "$vars.rule.skills}\n", "")  # fmt: skip
    text = text.replace('load: {form: case, user_field: assignee, where: status = "open"}', "")
    text = text.replace(
        "set: {grp: $rule.target", "copy_fields: {prio: nope.x}\n        set: {grp: $rule.target"
    )
    spec = FlowSpec.model_validate(yaml.safe_load(text))
    ctx = FlowContext(form_fields={"rule": frozenset({"seq", "active", "target", "words",
                                                      "match_kind", "match_line"})})  # fmt: skip
    with pytest.raises(DefinitionError) as caught:
        compile_flow(spec, ctx=ctx)
    assert {(p.code, p.path) for p in caught.value.problems} == {
        ("flow.missing-option", "/nodes/2/actions/0/rank/1/by"),  # $skill_level, no skills filter
        ("flow.missing-option", "/nodes/2/actions/0/load"),  # $load without a load source
        ("flow.unknown-field", "/nodes/1/actions/0/copy_fields/prio"),
    }


def test_bundle_check_reports_unknown_fields_of_the_forms_actions_read(tmp_path: Path) -> None:
    # `tangram check` and import know every form's fields, not only the flow's own form
    from engine.bundles import load_bundle
    from engine.errors import DefinitionError

    for name, text in FILES.items():
        if name == "flows/route.yaml":
            text = text.replace("order_by: seq", "order_by: rank")
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip(), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_bundle(tmp_path)
    assert ("flow.unknown-field", "/nodes/1/actions/0/order_by") in {
        (p.code, p.path) for p in caught.value.problems
    }

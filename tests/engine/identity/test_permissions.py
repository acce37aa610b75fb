"""The pure permission compiler: actions, scopes per action, field masks, narrowing, and the
refusal of list queries that filter or sort on hidden fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from engine.errors import DefinitionError, PermissionDenied
from engine.forms.compiler import compile_form
from engine.forms.listing import build_list_query
from engine.forms.spec import FormSpec
from engine.identity.permissions import (
    ACTIONS,
    ALL,
    FormAccess,
    ScopeTerm,
    compile_form_access,
    hidden_references,
    require,
    require_visible_fields,
    require_visible_query,
    require_writable,
)
from engine.identity.spec import FormPermission, RoleSpec


@dataclass(frozen=True)
class Actor:
    user_id: int | None = 7
    is_admin: bool = False
    department_ids: frozenset[int] = field(default_factory=frozenset)
    subtree_department_ids: frozenset[int] = field(default_factory=frozenset)


def role(key: str, *permissions: dict[str, Any]) -> RoleSpec:
    return RoleSpec.model_validate({"key": key, "label": key, "permissions": permissions})


def access(*roles: RoleSpec, actor: Actor | None = None, form: str = "ticket") -> FormAccess:
    return compile_form_access(actor=actor or Actor(), app="desk", form=form, roles=roles)


VIEWER = role("viewer", {"form": "ticket", "actions": ["read"], "scope": "all",
                         "fields": {"cost": "hidden", "notes": "edit"}})  # fmt: skip
ENGINEER = role("engineer", {"form": "ticket", "actions": ["read", "update"], "scope": "own",
                             "fields": {"cost": "read", "internal": "hidden"}})  # fmt: skip
AGENT = role("agent", {"form": "desk.ticket", "actions": ["create", "read", "update", "export"],
                       "scope": "department"})  # fmt: skip


def test_no_roles_no_actions_and_everything_hidden() -> None:
    got = access()
    assert not any(got.can(action) for action in ACTIONS)
    assert got.scope("read") == ()
    assert got.field_level("subject") == "hidden"


def test_actions_are_the_union_and_forms_must_match() -> None:
    other = role("other", {"form": "customer", "actions": ["delete"], "scope": "all"})
    got = access(ENGINEER, AGENT, other)
    assert {a for a in ACTIONS if got.can(a)} == {"create", "read", "update", "export"}
    assert not got.can("delete")


def test_scopes_are_per_action() -> None:
    got = access(VIEWER, ENGINEER)
    assert got.scope("read") == (ALL,)
    assert got.is_unrestricted("read")
    assert got.scope("update") == (ScopeTerm("own"),)
    assert not got.is_unrestricted("update")
    assert got.scope("delete") == ()


def test_scope_union_keeps_distinct_terms_once() -> None:
    tree = role("lead", {"form": "ticket", "actions": ["read"], "scope": "department_tree"})
    got = access(ENGINEER, AGENT, tree, role("again", *ENGINEER.permissions))
    assert got.scope("read") == (
        ScopeTerm("own"), ScopeTerm("department"), ScopeTerm("department_tree")
    )  # fmt: skip
    assert got.scope("create") == ()  # a record to create has no scope


def test_assigned_and_expr_terms() -> None:
    assigned = role("a", {"form": "ticket", "actions": ["read"], "scope": "assigned",
                          "assigned_fields": ["assignee", "helpers"]})  # fmt: skip
    expr = role("e", {"form": "ticket", "actions": ["read"], "scope": "expr",
                      "scope_expr": 'region = "north"'})  # fmt: skip
    terms = access(assigned, expr).scope("read")
    assert terms[0] == ScopeTerm("assigned", fields=("assignee", "helpers"))
    assert terms[1].kind == "expr" and terms[1].expr is not None
    assert terms[1].expr_text == 'region = "north"'


def test_assigned_fields_default_to_assignee_and_need_assigned() -> None:
    default = role("d", {"form": "ticket", "actions": ["read"], "scope": "assigned"})
    assert access(default).scope("read") == (ScopeTerm("assigned", fields=("assignee",)),)
    with pytest.raises(ValidationError, match="assigned_fields"):
        FormPermission.model_validate({"form": "t", "scope": "own", "assigned_fields": ["a"]})


def test_bad_scope_expression_is_a_definition_error() -> None:
    bad = role("bad", {"form": "ticket", "scope": "expr", "scope_expr": "region = = 1"})
    with pytest.raises(DefinitionError) as info:
        access(bad)
    assert info.value.problems[0].code == "identity.bad-scope-expr"


def test_field_mask_most_permissive_of_reading_roles() -> None:
    got = access(VIEWER, ENGINEER)
    # viewer hides cost, engineer reads it: read wins
    assert got.field_level("cost") == "read"
    # viewer cannot write, so its "edit" on notes is read; engineer (update) leaves notes edit
    assert got.field_level("notes") == "edit"
    # engineer hides internal, viewer does not name it (read for a read-only role)
    assert got.field_level("internal") == "read"
    assert got.field_level("subject") == "edit"
    assert got.field_level("subject.part") == "edit"


def test_read_only_role_never_edits() -> None:
    got = access(VIEWER)
    assert got.mask(["cost", "notes", "subject"]) == {
        "cost": "hidden", "notes": "read", "subject": "read"
    }  # fmt: skip
    assert got.visible(["cost", "notes"]) == ("notes",)


def test_roles_without_read_do_not_open_fields() -> None:
    creator = role("c", {"form": "ticket", "actions": ["create"], "fields": {"cost": "edit"}})
    got = access(VIEWER, creator)
    assert got.field_level("cost") == "hidden"


def test_narrow_only_lowers() -> None:
    got = access(VIEWER, ENGINEER)
    narrowed = got.narrow({"cost": "edit", "subject": "read", "notes": "hidden", "x": "required"})
    assert narrowed.field_level("cost") == "read"  # cannot widen
    assert narrowed.field_level("subject") == "read"
    assert narrowed.field_level("notes") == "hidden"
    assert narrowed.field_level("x") == "edit"
    assert narrowed.field_level("other") == "edit"  # untouched
    assert got.field_level("subject") == "edit"  # the original is unchanged
    with pytest.raises(ValueError):
        got.narrow({"a": "write"})


def test_admin_gets_everything() -> None:
    got = access(actor=Actor(is_admin=True))
    assert all(got.can(a) for a in ACTIONS)
    assert all(got.is_unrestricted(a) for a in ACTIONS if a != "create")
    assert got.field_level("anything") == "edit"
    assert got.narrow({"anything": "read"}).field_level("anything") == "read"


def test_require() -> None:
    require(access(VIEWER), "read")
    with pytest.raises(PermissionDenied) as info:
        require(access(VIEWER), "export")
    assert info.value.code == "identity.permission-denied"


# --- hidden fields in list queries -----------------------------------------------------------

FORMS = {
    "ticket": FormSpec.model_validate(
        {
            "key": "ticket",
            "label": "Ticket",
            "fields": [
                {"key": "subject", "type": "text"},
                {"key": "cost", "type": "number"},
                {"key": "status", "type": "select", "options": [{"key": "a", "label": "A"}]},
                {"key": "customer", "type": "relation", "form": "customer"},
                {"key": "tier", "type": "lookup", "relation": "customer", "field": "tier"},
            ],
        }
    ),  # fmt: skip
    "customer": FormSpec.model_validate(
        {
            "key": "customer",
            "label": "C",
            "fields": [
                {"key": "name", "type": "text"},
                {"key": "tier", "type": "text"},
            ],
        }
    ),  # fmt: skip
}
TICKET = compile_form(FORMS["ticket"], forms=FORMS)


def query(**kw: Any) -> Any:
    return build_list_query(TICKET, forms=FORMS, **kw)


def test_visible_query_passes() -> None:
    q = query(filter={"field": "subject", "op": "eq", "value": "x"}, sort=["-created_at", "owner"])
    require_visible_query(access(VIEWER), q)
    assert hidden_references(access(VIEWER), q) == ()


@pytest.mark.parametrize(
    "kw",
    [
        {"filter": {"field": "cost", "op": "gt", "value": 5}},
        {"filter": {"or": [{"field": "subject", "op": "eq", "value": "x"},
                           {"not": {"field": "cost", "op": "is_blank"}}]}},
        {"sort": ["-cost"]},
        {"filter_expr": "cost > 100 AND subject <> \"\""},
    ],
    ids=["filter", "nested", "sort", "expr"],
)  # fmt: skip
def test_hidden_field_in_query_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied) as info:
        require_visible_query(access(VIEWER), query(**kw))
    assert info.value.code == "identity.hidden-field"
    assert hidden_references(access(VIEWER), query(**kw)) == ("cost",)


def test_hidden_through_a_relation() -> None:
    hides_customer = role("h", {"form": "ticket", "scope": "all",
                                "fields": {"customer": "hidden"}})  # fmt: skip
    hides_tier = role("t", {"form": "customer", "scope": "all", "fields": {"tier": "hidden"}})
    dotted = query(filter={"field": "customer.tier", "op": "eq", "value": "gold"})
    lookup = query(sort=["tier"])
    assert hidden_references(access(hides_customer), dotted) == ("customer.tier",)
    assert hidden_references(access(hides_customer), lookup) == ("tier",)
    target = {"customer": access(hides_tier, form="customer")}
    assert hidden_references(access(VIEWER), dotted, targets=target) == ("customer.tier",)
    assert hidden_references(access(VIEWER), dotted) == ()


def test_require_visible_fields() -> None:
    require_visible_fields(access(VIEWER), ["subject", "owner", "created_at"])
    with pytest.raises(PermissionDenied):
        require_visible_fields(access(VIEWER), ["subject", "cost"])


def test_require_writable_and_strip() -> None:
    got = access(VIEWER, ENGINEER).narrow({"subject": "read"})
    require_writable(got, ["notes", "cost_center"])
    for keys in (["subject"], ["cost"], ["notes", "subject"]):
        with pytest.raises(PermissionDenied) as info:
            require_writable(access(VIEWER).narrow({}), keys)
        assert info.value.code == "identity.field-not-editable"
    assert access(VIEWER).strip({"cost": 1, "subject": "s"}) == {"subject": "s"}

"""Related records through the pure compiler: a form's links and the target form's access
decide what its lookups and `relation.field` names show, and what lists may filter or sort on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.errors import PermissionDenied
from engine.forms.compiler import compile_form
from engine.forms.listing import build_list_query
from engine.forms.spec import FormSpec
from engine.identity.permissions import FormAccess, hidden_references, require_visible_fields
from engine.identity.related_access import NO_LINKS, checked, form_links, with_related
from engine.identity.spec import RoleSpec


@dataclass(frozen=True)
class Actor:
    user_id: int | None = 7
    is_admin: bool = False
    department_ids: frozenset[int] = field(default_factory=frozenset)
    subtree_department_ids: frozenset[int] = field(default_factory=frozenset)


TICKET_BODY: dict[str, Any] = {
    "key": "ticket",
    "label": "Ticket",
    "fields": [
        {"key": "subject", "type": "text"},
        {"key": "customer", "type": "relation", "form": "customer"},
        {"key": "tier", "type": "lookup", "relation": "customer", "field": "tier"},
        {"key": "cname", "type": "lookup", "relation": "customer", "field": "name"},
        {"key": "elsewhere", "type": "relation", "form": "crm.account"},
        {"key": "old", "type": "relation", "form": "customer", "retired": True},
    ],
}
CUSTOMER_BODY: dict[str, Any] = {
    "key": "customer",
    "label": "Customer",
    "fields": [{"key": "name", "type": "text"}, {"key": "tier", "type": "text"}],
}
FORMS = {"ticket": FormSpec.model_validate(TICKET_BODY)}
FORMS["customer"] = FormSpec.model_validate(CUSTOMER_BODY)
TICKET = compile_form(FORMS["ticket"], forms=FORMS)


def role(*permissions: dict[str, Any]) -> RoleSpec:
    return RoleSpec.model_validate({"key": "r", "label": "r", "permissions": permissions})


def accesses(*grants: dict[str, Any]) -> FormAccess:
    """The ticket access of an actor holding `grants`, with its links to customer."""
    from engine.identity.permissions import compile_form_access

    roles = [role(*grants)]
    compiled = {
        form: compile_form_access(actor=Actor(), app="desk", form=form, roles=roles)
        for form in ("ticket", "customer")
    }
    links = form_links("desk", TICKET_BODY)
    return with_related(compiled["ticket"], links, {"customer": compiled["customer"]})


READ_TICKETS = {"form": "ticket", "actions": ["read"], "scope": "all"}


def test_form_links_reads_same_app_relations_and_their_lookups() -> None:
    links = form_links("desk", TICKET_BODY)
    assert dict(links.relations) == {"customer": "customer"}
    assert dict(links.lookups) == {"tier": ("customer", "tier"), "cname": ("customer", "name")}
    assert form_links("desk", {"fields": "nonsense"}) == NO_LINKS


def test_all_scope_and_visible_fields_show_lookups() -> None:
    got = accesses(READ_TICKETS, {"form": "customer", "actions": ["read"], "scope": "all"})
    assert not got.is_hidden("tier") and not got.scoped_lookups
    assert got.strip({"tier": "gold", "subject": "s"}) == {"tier": "gold", "subject": "s"}


def test_hidden_target_field_hides_its_lookup_and_dotted_name() -> None:
    got = accesses(
        READ_TICKETS,
        {"form": "customer", "actions": ["read"], "scope": "all", "fields": {"tier": "hidden"}},
    )
    assert got.is_hidden("tier") and got.is_hidden("customer.tier")
    assert not got.is_hidden("cname") and not got.is_hidden("customer.name")
    assert got.strip({"tier": "gold", "cname": "ACME"}) == {"cname": "ACME"}
    with pytest.raises(PermissionDenied):
        require_visible_fields(got, ["customer.tier"])


def test_no_read_on_the_target_hides_every_lookup_but_not_the_relation() -> None:
    got = accesses(READ_TICKETS)
    assert got.is_hidden("tier") and got.is_hidden("cname") and got.is_hidden("customer.name")
    assert not got.is_hidden("customer")


def test_restricted_target_scope_nulls_lookups_until_checked() -> None:
    got = accesses(READ_TICKETS, {"form": "customer", "actions": ["read"], "scope": "own"})
    assert dict(got.scoped_lookups) == {"tier": "customer", "cname": "customer"}
    assert got.strip({"tier": "gold", "subject": "s"}) == {"tier": None, "subject": "s"}
    assert checked(got).strip({"tier": "gold"}) == {"tier": "gold"}


def query(**kw: Any) -> Any:
    return build_list_query(TICKET, forms=FORMS, **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"sort": ["tier"]},
        {"sort": ["customer.created_at"]},
        {"filter": {"field": "customer.name", "op": "eq", "value": "ACME"}},
        {"filter_expr": 'customer.name = "ACME"'},
        {"filter_expr": 'cname = "ACME"'},
    ],
    ids=["lookup-sort", "system-column", "dotted-filter", "dotted-expr", "lookup-expr"],
)
def test_restricted_target_scope_refuses_filters_and_sorts_through_it(kw: dict[str, Any]) -> None:
    scoped = accesses(READ_TICKETS, {"form": "customer", "actions": ["read"], "scope": "own"})
    assert hidden_references(scoped, query(**kw)) != ()
    full = accesses(READ_TICKETS, {"form": "customer", "actions": ["read"], "scope": "all"})
    assert hidden_references(full, query(**kw)) == ()


def test_admins_are_left_as_they_are() -> None:
    from engine.identity.permissions import admin_access

    admin = admin_access(app="desk", form="ticket")
    assert with_related(admin, form_links("desk", TICKET_BODY), {}) is admin


ORDER_BODY: dict[str, Any] = {
    "key": "order",
    "label": "Order",
    "fields": [
        {
            "key": "lines",
            "type": "subform",
            "fields": [
                {"key": "customer", "type": "relation", "form": "customer"},
                {"key": "ctier", "type": "lookup", "relation": "customer", "field": "tier"},
                {"key": "cname", "type": "lookup", "relation": "customer", "field": "name"},
                {"key": "qty", "type": "number"},
            ],
        }
    ],
}


def order_access(*grants: dict[str, Any]) -> FormAccess:
    from engine.identity.permissions import compile_form_access

    roles = [role({"form": "order", "actions": ["read"], "scope": "all"}, *grants)]
    compiled = {
        form: compile_form_access(actor=Actor(), app="desk", form=form, roles=roles)
        for form in ("order", "customer")
    }
    links = form_links("desk", ORDER_BODY)
    return with_related(compiled["order"], links, {"customer": compiled["customer"]})


def test_subform_lookups_follow_the_target_form_and_are_masked_when_not_fully_readable() -> None:
    links = form_links("desk", ORDER_BODY)
    assert {k: dict(v) for k, v in links.row_lookups.items()} == {
        "lines": {"ctier": ("customer", "tier"), "cname": ("customer", "name")}
    }
    row = {"customer": 3, "ctier": "gold", "cname": "ACME", "qty": 2}
    full = order_access({"form": "customer", "actions": ["read"], "scope": "all"})
    assert full.strip({"lines": [row]}) == {"lines": [row]}
    hidden_tier = order_access(
        {"form": "customer", "actions": ["read"], "scope": "all", "fields": {"tier": "hidden"}}
    )
    assert hidden_tier.strip({"lines": [row]}) == {"lines": [{**row, "ctier": None}]}
    for grants in ((), ({"form": "customer", "actions": ["read"], "scope": "own"},)):
        masked = order_access(*grants)  # no read, or a restricted scope: rows are not checked
        assert masked.strip({"lines": [row]}) == {"lines": [{**row, "ctier": None, "cname": None}]}

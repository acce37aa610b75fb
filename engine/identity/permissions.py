"""The permission compiler, pure half: an actor's roles for one form become a `FormAccess`.

A `FormAccess` answers which actions the actor may take, which records each action reaches (a
union of scope terms, turned into SQL by `engine.storage.permission_sql`) and how each field
shows (hidden, read, edit). Every read and write path asks the same object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Protocol, get_args

from engine.errors import DefinitionError, PermissionDenied, Problem
from engine.expr import Expression, ExpressionError, parse, references
from engine.forms.listing import AllOf, AnyOf, Condition, FilterNode, ListQuery, Not
from engine.identity.spec import FieldAccess, FormAction, FormPermission, RoleSpec, Scope

ACTIONS: tuple[FormAction, ...] = get_args(FormAction)
WRITE_ACTIONS = frozenset({"create", "update"})
_RANK: dict[str, int] = {"hidden": 0, "read": 1, "edit": 2}
_LEVELS: tuple[FieldAccess, ...] = ("hidden", "read", "edit")
DEFAULT_ASSIGNED = ("assignee",)
DENIED = "identity.permission-denied"
HIDDEN_FIELD = "identity.hidden-field"
NOT_EDITABLE = "identity.field-not-editable"
BAD_SCOPE_EXPR = "identity.bad-scope-expr"
BAD_ASSIGNED_FIELD = "identity.bad-assigned-field"


class ActorLike(Protocol):
    """What the permission compiler needs to know about who is asking.

    `department_ids` are the departments the user belongs to; `subtree_department_ids` those
    and every department below them (precomputed once per request by the identity service).
    """

    @property
    def user_id(self) -> int | None: ...

    @property
    def is_admin(self) -> bool: ...

    @property
    def department_ids(self) -> frozenset[int]: ...

    @property
    def subtree_department_ids(self) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class ScopeTerm:
    """One way a record can be in reach; a record is in scope when any term holds.

    `fields` are the user fields of an `assigned` term; `expr` the condition of an `expr` term.
    """

    kind: Scope
    fields: tuple[str, ...] = ()
    expr: Expression | None = field(default=None, compare=False)
    expr_text: str | None = None


ALL = ScopeTerm("all")


@dataclass(frozen=True, slots=True)
class FormAccess:
    """What one actor may do with the records of one form (compiled per request).

    `scopes` maps each granted action to its scope terms (the union across roles that grant
    that action); `field_levels` holds the fields some role names; `default_level` applies to
    every other field.
    """

    app: str
    form: str
    actions: frozenset[str]
    scopes: Mapping[str, tuple[ScopeTerm, ...]]
    field_levels: Mapping[str, FieldAccess]
    default_level: FieldAccess
    is_admin: bool = False
    # Fields showing other forms' records (engine/identity/related_access.py): relation key →
    # the actor's access to its target form, and lookups whose target read scope is restricted
    # (lookup key → relation key): shown as null until checked against that scope in SQL.
    related: Mapping[str, FormAccess] = field(default_factory=lambda: MappingProxyType({}))
    scoped_lookups: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Lookup columns of subform rows (subform key → columns) whose target the actor may not
    # read in full: always null, as rows are not checked against the target's scope.
    row_masks: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def can(self, action: str) -> bool:
        """Whether the actor may take `action` on at least some records of the form."""
        return action in self.actions

    def scope(self, action: str = "read") -> tuple[ScopeTerm, ...]:
        """The scope terms of `action`: empty when the action is not granted."""
        return self.scopes.get(action, ())

    def is_unrestricted(self, action: str = "read") -> bool:
        """Whether `action` reaches every record (no row condition needed)."""
        return ALL in self.scope(action)

    def field_level(self, key: str) -> FieldAccess:
        """hidden, read or edit for field `key`.

        A `relation.field` name is at most the relation's level, and hidden when the field is
        hidden on the target form (or the actor cannot read that form) — given `related`.
        """
        head, dot, rest = key.partition(".")
        level = self.field_levels.get(head, self.default_level)
        target = self.related.get(head) if dot else None
        if target is not None and (not target.can("read") or target.is_hidden(rest)):
            return "hidden"
        return level

    def is_hidden(self, key: str) -> bool:
        return self.field_level(key) == "hidden"

    def can_edit(self, key: str) -> bool:
        return self.field_level(key) == "edit"

    def mask(self, keys: Iterable[str]) -> dict[str, FieldAccess]:
        """The level of each of `keys`."""
        return {key: self.field_level(key) for key in keys}

    def visible(self, keys: Iterable[str]) -> tuple[str, ...]:
        """`keys` without the hidden ones, in order."""
        return tuple(key for key in keys if not self.is_hidden(key))

    def strip(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` (a record's field values) without the hidden fields.

        Lookups not yet checked against their target's read scope (`scoped_lookups`) are null.
        """
        masked = self.scoped_lookups
        return {
            key: None if key in masked else self.mask_rows(key, value)
            for key, value in values.items()
            if not self.is_hidden(key)
        }

    def mask_rows(self, key: str, value: Any) -> Any:
        """Subform `key`'s rows with the lookup columns of `row_masks` nulled."""
        columns = self.row_masks.get(key)
        if not columns or not isinstance(value, list):
            return value
        return [
            {k: None if k in columns else v for k, v in row.items()}
            if isinstance(row, Mapping)
            else row
            for row in value
        ]

    def narrow(self, mask: Mapping[str, str]) -> FormAccess:
        """This access with each field of `mask` lowered to at most its level there.

        Flow-node permissions use it: a node can hide or freeze a field, never open one up.
        `required` counts as `edit`. Fields absent from `mask` keep their level.
        """
        levels = dict(self.field_levels)
        for key, wanted in mask.items():
            level = "edit" if wanted == "required" else wanted
            if level not in _RANK:
                raise ValueError(f"unknown field access {wanted!r} for {key!r}")
            levels[key] = _lowest(self.field_level(key), level)
        return replace(self, field_levels=MappingProxyType(levels))


def compile_form_access(
    *, actor: ActorLike, app: str, form: str, roles: Iterable[RoleSpec]
) -> FormAccess:
    """Compile `roles` (the actor's roles in `app`) into what the actor may do with `form`.

    Only permissions naming `form` (or `app.form`) count. An admin gets every action on all
    records with every field editable.

    Raises:
        DefinitionError: `identity.bad-scope-expr` when a scope expression does not parse.
    """
    if actor.is_admin:
        return admin_access(app=app, form=form)
    grants = [p for role in roles for p in role.permissions if _names(p.form, app, form)]
    actions = frozenset(a for p in grants for a in p.actions)
    scopes: dict[str, tuple[ScopeTerm, ...]] = {
        action: _union(p for p in grants if action in p.actions) for action in actions
    }
    scopes.pop("create", None)
    readers = [p for p in grants if "read" in p.actions]
    return FormAccess(
        app=app,
        form=form,
        actions=actions,
        scopes=MappingProxyType(scopes),
        field_levels=MappingProxyType(_field_levels(readers)),
        default_level=_best(_role_default(p) for p in readers),
    )


def admin_access(*, app: str, form: str) -> FormAccess:
    """Every action on every record, every field editable."""
    scopes: dict[str, tuple[ScopeTerm, ...]] = {a: (ALL,) for a in ACTIONS if a != "create"}
    return FormAccess(
        app=app,
        form=form,
        actions=frozenset(ACTIONS),
        scopes=MappingProxyType(scopes),
        field_levels=MappingProxyType({}),
        default_level="edit",
        is_admin=True,
    )


def require(access: FormAccess, action: str) -> None:
    """Raise `PermissionDenied` unless `access` grants `action` on the form."""
    if not access.can(action):
        raise PermissionDenied(
            f"no {action!r} permission on {access.app}.{access.form}", code=DENIED
        )


def require_writable(access: FormAccess, keys: Iterable[str]) -> None:
    """Refuse a create or update that sends fields the actor may not edit.

    Hidden fields are refused like read-only ones (`identity.field-not-editable`): a write
    must not be a way to probe or overwrite what the actor cannot see.
    """
    refused = sorted({key for key in keys if not access.can_edit(key)})
    if refused:
        raise PermissionDenied(
            f"fields you may not change: {', '.join(refused)}", code=NOT_EDITABLE
        )


def _names(ref: str, app: str, form: str) -> bool:
    return ref == form or ref == f"{app}.{form}"


def _union(grants: Iterable[FormPermission]) -> tuple[ScopeTerm, ...]:
    terms: list[ScopeTerm] = []
    for grant in grants:
        term = _term(grant)
        if term == ALL:
            return (ALL,)
        if term not in terms:
            terms.append(term)
    return tuple(terms)


def _term(grant: FormPermission) -> ScopeTerm:
    if grant.scope == "assigned":
        return ScopeTerm("assigned", fields=tuple(grant.assigned_fields) or DEFAULT_ASSIGNED)
    if grant.scope == "expr":
        text = str(grant.scope_expr)
        return ScopeTerm("expr", expr=parse_scope_expr(text), expr_text=text)
    return ScopeTerm(grant.scope)


@lru_cache(maxsize=512)
def parse_scope_expr(text: str) -> Expression:
    """Parse a role's scope expression (cached by text: roles repeat on every request)."""
    try:
        return parse(text)
    except ExpressionError as err:
        problem = Problem(code=BAD_SCOPE_EXPR, path="/scope_expr", message=str(err))
        raise DefinitionError([problem]) from err


def _role_default(grant: FormPermission) -> FieldAccess:
    return "edit" if WRITE_ACTIONS & set(grant.actions) else "read"


def _field_levels(readers: list[FormPermission]) -> dict[str, FieldAccess]:
    named = {key for grant in readers for key in grant.fields}
    return {key: _best(_level(grant, key) for grant in readers) for key in sorted(named)}


def _level(grant: FormPermission, key: str) -> FieldAccess:
    # A role that cannot write shows a field at most read-only, whatever it says.
    return _lowest(grant.fields.get(key, "edit"), _role_default(grant))


def _best(levels: Iterable[str]) -> FieldAccess:
    return _LEVELS[max((_RANK[level] for level in levels), default=0)]


def _lowest(first: str, second: str) -> FieldAccess:
    return _LEVELS[min(_RANK[first], _RANK[second])]


# --- requests that name fields ---------------------------------------------------------------


def hidden_references(
    access: FormAccess,
    query: ListQuery,
    *,
    targets: Mapping[str, FormAccess] | None = None,
) -> tuple[str, ...]:
    """The names a list query filters or sorts on that the actor may not see, sorted.

    A `relation.field` name or a lookup counts as hidden when the relation is hidden here or,
    given the target form's access in `targets` (keyed by form key), the field is hidden there.
    """
    names: set[str] = set()
    refs = [c.ref for c in _conditions(query.filter)] + [key.ref for key in query.sort]
    for ref in refs:
        if _is_hidden_ref(access, ref, targets or {}):
            names.add(ref.name)
    if query.filter_expr is not None:
        names.update(n for n in references(query.filter_expr) if _hidden_name(access, n))
    return tuple(sorted(names))


def require_visible_query(
    access: FormAccess,
    query: ListQuery,
    *,
    targets: Mapping[str, FormAccess] | None = None,
) -> None:
    """Refuse a query that filters or sorts on hidden fields (order and counts would leak)."""
    hidden = hidden_references(access, query, targets=targets)
    if hidden:
        raise PermissionDenied(
            f"filter or sort on fields you cannot see: {', '.join(hidden)}", code=HIDDEN_FIELD
        )


def require_visible_fields(access: FormAccess, names: Iterable[str]) -> None:
    """Refuse a request (report dimension, export column, search field) naming hidden fields."""
    hidden = sorted({name for name in names if _hidden_name(access, name)})
    if hidden:
        raise PermissionDenied(f"fields you cannot see: {', '.join(hidden)}", code=HIDDEN_FIELD)


def _hidden_name(access: FormAccess, name: str) -> bool:
    if name.startswith("$") or name in _SYSTEM_NAMES:
        return False
    if access.is_hidden(name) or name in access.scoped_lookups:
        return True
    head, dot, _rest = name.partition(".")
    target = access.related.get(head) if dot else None
    return target is not None and not target.is_unrestricted("read")


_SYSTEM_NAMES = frozenset(
    {"id", "created_at", "updated_at", "created_by", "updated_by", "owner", "version"}
)


def _is_hidden_ref(access: FormAccess, ref: Any, targets: Mapping[str, FormAccess]) -> bool:
    if ref.via is None:
        return not ref.system and access.is_hidden(ref.name)
    if access.is_hidden(ref.name) or access.is_hidden(ref.via):
        return True
    target = targets.get(str(ref.target_form)) or access.related.get(ref.via)
    if target is None:
        return False
    # Through a relation, the joined row is any target record, in the actor's scope or not:
    # only a target the actor reads in full can order or filter without revealing values.
    if not target.is_unrestricted("read"):
        return True
    return not ref.system and target.is_hidden(ref.column)


def _conditions(node: FilterNode | None) -> list[Condition]:
    if node is None:
        return []
    if isinstance(node, AllOf | AnyOf):
        return [c for item in node.items for c in _conditions(item)]
    if isinstance(node, Not):
        return _conditions(node.item)
    return [node]


__all__ = [
    "ACTIONS",
    "ALL",
    "BAD_ASSIGNED_FIELD",
    "BAD_SCOPE_EXPR",
    "DEFAULT_ASSIGNED",
    "DENIED",
    "HIDDEN_FIELD",
    "NOT_EDITABLE",
    "ActorLike",
    "FormAccess",
    "ScopeTerm",
    "admin_access",
    "compile_form_access",
    "hidden_references",
    "parse_scope_expr",
    "require",
    "require_visible_fields",
    "require_visible_query",
    "require_writable",
]

"""Role definitions: per-form actions, record scope and field permissions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from engine.forms.fields import Expr, FormRef
from engine.labels import Label
from engine.spec_base import Key, SpecModel

ROLE_SCHEMA_VERSION = 1

FormAction = Literal["create", "read", "update", "delete", "import", "export", "print"]
Scope = Literal["own", "assigned", "department", "department_tree", "all", "expr"]
FieldAccess = Literal["hidden", "read", "edit"]


class FormPermission(SpecModel):
    """What a role may do with the records of one form."""

    form: FormRef
    actions: tuple[FormAction, ...] = ("read",)
    scope: Scope = "own"
    scope_expr: Expr | None = Field(None, description="Row condition when scope is expr")
    assigned_fields: tuple[Key, ...] = Field(
        (),
        description="User fields that mean 'assigned to me' (scope assigned; default assignee)",
    )
    fields: dict[Key, FieldAccess] = Field(
        {}, description="Overrides; unlisted fields: edit with update or create, read otherwise"
    )

    @model_validator(mode="after")
    def _scope_expr(self) -> FormPermission:
        if (self.scope == "expr") != (self.scope_expr is not None):
            raise PydanticCustomError(
                "identity.scope-expr", "scope_expr is given exactly when scope is expr"
            )
        if self.assigned_fields and self.scope != "assigned":
            raise PydanticCustomError(
                "identity.assigned-fields", "assigned_fields is given only when scope is assigned"
            )
        return self


class RoleSpec(SpecModel):
    """A named set of permissions, granted to users and departments."""

    schema_version: Annotated[int, Field(ge=1, le=ROLE_SCHEMA_VERSION)] = ROLE_SCHEMA_VERSION
    key: Key
    label: Label
    description: Label | None = None
    permissions: tuple[FormPermission, ...] = ()
    apps: tuple[Key, ...] = Field((), description="Apps whose menus the role sees")


__all__ = [
    "ROLE_SCHEMA_VERSION",
    "FieldAccess",
    "FormAction",
    "FormPermission",
    "RoleSpec",
    "Scope",
]

"""Per-node field permissions: what a task shows of its record and which values it accepts.

A node's `field_permissions` narrow the actor's form access, never widen it: a field the node
marks `edit` stays read-only for someone whose roles only let them read it. A task accepts
values only for fields the node marks `edit` or `required` (and the actor may edit); `required`
fields must hold a value when the task is approved or completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import FieldError, SubmissionError
from engine.expr import evaluate, parse
from engine.flows.spec import UserTaskNode
from engine.identity.permissions import FormAccess

NOT_EDITABLE = "task.field-not-editable"
REQUIRED = "task.field-required"
WRITABLE = ("edit", "required")


def task_access(access: FormAccess, node: UserTaskNode) -> FormAccess:
    """The actor's form access narrowed by the node's field permissions."""
    return access.narrow(node.field_permissions)


def field_levels(access: FormAccess, node: UserTaskNode, keys: Iterable[str]) -> dict[str, str]:
    """hidden / read / edit / required per field, as the task shows them.

    Only fields the node opens (`edit`/`required`) are editable in a task; others show at
    most read-only.
    """
    narrowed = task_access(access, node)
    out: dict[str, str] = {}
    for key in keys:
        level = narrowed.field_level(key)
        wanted = node.field_permissions.get(key)
        if level == "edit" and wanted not in WRITABLE:
            level = "read"
        out[key] = "required" if level == "edit" and wanted == "required" else level
    return out


def check_values(node: UserTaskNode, access: FormAccess, values: Mapping[str, Any]) -> None:
    """Refuse values for fields the task may not change (each with its path).

    Raises:
        SubmissionError: `task.field-not-editable` per refused field.
    """
    levels = field_levels(access, node, values)
    errors = [
        FieldError(key, NOT_EDITABLE, f"this step may not change {key!r}")
        for key, level in levels.items()
        if level not in WRITABLE
    ]
    if errors:
        raise SubmissionError(errors)


def required_missing(node: UserTaskNode, values: Mapping[str, Any]) -> list[FieldError]:
    """A `task.field-required` error per required field without a value in `values`."""
    return [
        FieldError(key, REQUIRED, f"{key!r} is required at this step")
        for key, level in node.field_permissions.items()
        if level == "required" and _is_blank(values.get(key))
    ]


def claim_values(
    node: UserTaskNode, record: Mapping[str, Any], *, claimant: int, now: datetime
) -> dict[str, Any]:
    """The node's `on_claim` values computed over the record, `$claimant` being the user."""
    seen = {**record, "$claimant": claimant}
    values: dict[str, Any] = {}
    for key, text in node.on_claim.items():
        value = evaluate(parse(text), seen, now=now)
        # expressions compute numbers as Decimal; an id for a relation/user field is an int
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        values[key] = value
    return values


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and not value)


__all__ = [
    "NOT_EDITABLE",
    "REQUIRED",
    "WRITABLE",
    "check_values",
    "claim_values",
    "field_levels",
    "required_missing",
    "task_access",
]

"""The expression catalog of a form: which names an expression may use, and their types.

One table maps field classes to type names; `expr_type` turns a name into an `ExprType`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.expr import ExprType
from engine.forms import fields as f
from engine.forms.spec import FormSpec

# Type names as `ExprType.from_name` spells them: "text", "number", ... "list(text)".
# A field class missing here has no value of its own (layout-only fields).
FIELD_TYPES: dict[type, str] = {
    f.TextField: "text",
    f.TextareaField: "text",
    f.RichTextField: "text",
    f.EmailField: "text",
    f.PhoneField: "text",
    f.UrlField: "text",
    f.SelectField: "text",
    f.CascadeField: "text",
    f.AutonumberField: "text",
    f.NumberField: "number",
    f.MoneyField: "number",
    f.PercentField: "number",
    f.RatingField: "number",
    f.DateField: "date",
    f.DatetimeField: "datetime",
    f.TimeField: "time",
    f.BooleanField: "boolean",
    f.MultiselectField: "list(text)",
    f.DateRangeField: "any",
    f.AddressField: "any",
    f.LocationField: "any",
    f.ImageField: "list(any)",
    f.AttachmentField: "list(any)",
    f.SignatureField: "any",
    f.SubformField: "list(any)",
    f.LookupField: "any",
    f.RollupField: "number",
}

# Parts of composite fields, reachable as `field.part`.
FIELD_PARTS: dict[type, dict[str, str]] = {
    f.DateRangeField: {"start": "date", "end": "date"},
    f.AddressField: {"province": "text", "city": "text", "district": "text", "detail": "text"},
    f.LocationField: {"lng": "number", "lat": "number", "accuracy": "number"},
}

RESULT_TYPES: dict[str, str] = {
    "text": "text",
    "number": "number",
    "money": "number",
    "percent": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "time": "time",
}

# System columns every record has (DESIGN.md "Storage"); field keys may not reuse them.
SYSTEM_COLUMNS: dict[str, str] = {
    "id": "number",
    "created_at": "datetime",
    "created_by": "number",
    "updated_at": "datetime",
    "updated_by": "number",
    "owner": "number",
    "version": "number",
}
# Expression keywords too: a field with such a key could never be referenced in an expression.
EXPRESSION_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
RESERVED_KEYS = (
    frozenset(SYSTEM_COLUMNS)
    | {"owner_id", "deleted_at", "parent_id", "position"}
    | EXPRESSION_KEYWORDS
)

# Variables every form expression may use.
VARIABLES: dict[str, str] = {
    "$now": "datetime",
    "$today": "date",
    "$user": "number",
    "$user.id": "number",
    "$user.name": "text",
    "$user.email": "text",
    "$user.department": "number",
    "$user.roles": "list(text)",
}

MAX_RELATION_HOPS = 2


def expr_type(name: str) -> ExprType:
    """The `ExprType` for a type name of the tables above."""
    return ExprType.from_name(name)


def type_name_of(field: object) -> str | None:
    """The expression type name of a field's own value, or None for layout-only fields."""
    if isinstance(field, f.FormulaField):
        return RESULT_TYPES[field.result_type]
    if isinstance(field, f.UserField | f.DepartmentField | f.RelationField):
        return "list(number)" if field.multiple else "number"
    return FIELD_TYPES.get(type(field))


def _own_names(fields: Iterable[object], prefix: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for field in fields:
        name = type_name_of(field)
        if name is None:
            continue
        key = prefix + field.key  # type: ignore[attr-defined]
        names[key] = name
        for part, part_type in FIELD_PARTS.get(type(field), {}).items():
            names[f"{key}.{part}"] = part_type
    return names


def catalog_names(
    fields: Iterable[object],
    forms: Mapping[str, FormSpec] | None,
    *,
    prefix: str = "",
    hops: int = 0,
) -> dict[str, str]:
    """Names of `fields` and, through relations, of the related forms' fields."""
    fields = tuple(fields)
    names = {prefix + name: kind for name, kind in SYSTEM_COLUMNS.items()}
    names.update(_own_names(fields, prefix))
    if forms is None or hops >= MAX_RELATION_HOPS:
        return names
    for field in fields:
        if isinstance(field, f.RelationField) and not field.multiple:
            target = forms.get(field.form)
            if target is not None:
                inner = f"{prefix}{field.key}."
                names.update(catalog_names(target.fields, forms, prefix=inner, hops=hops + 1))
    for field in fields:
        if isinstance(field, f.LookupField):
            through = names.get(f"{prefix}{field.relation}.{field.field}")
            names[prefix + field.key] = through or "any"
    return names


def build_catalog(names: Mapping[str, str]) -> dict[str, ExprType]:
    """Variables plus `names`, as the mapping `engine.expr.check` takes."""
    merged = {**VARIABLES, **names}
    return {name: expr_type(type_name) for name, type_name in merged.items()}

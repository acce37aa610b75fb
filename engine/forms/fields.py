"""Field definitions: one Pydantic model per field type, joined in a union discriminated on `type`.

The `type` strings are shared with storage (one column builder per type) and never renamed.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, JsonValue, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from engine.labels import Label
from engine.spec_base import Key, SpecModel

OptionKey = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", min_length=1, max_length=64)
]
FormRef = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", max_length=61),
    Field(description="A form key, or `app.form` for a form in another app"),
]
Expr = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Width = Literal["1/4", "1/3", "1/2", "full"]
Color = Annotated[str, StringConstraints(pattern=r"^(#[0-9a-fA-F]{6}|[a-z]+)$")]

AUTONUMBER_DATE_TOKENS = frozenset(
    {"YYYY", "YY", "MM", "DD", "YYYYMM", "YYYYMMDD", "YYMM", "YYMMDD"}
)
_AUTONUMBER_TOKEN = re.compile(r"\{([^{}]*)\}")


class Validation(SpecModel):
    """A custom rule: the record is valid when `expr` is true; otherwise `message` is shown."""

    expr: Expr
    message: Label
    code: Key | None = None


class Option(SpecModel):
    """One choice of a select, multiselect or cascade; `parent` nests it under another option."""

    key: OptionKey
    label: Label
    color: Color | None = None
    parent: OptionKey | None = None
    retired: bool = False


def check_option_tree(options: tuple[Option, ...], *, max_depth: int) -> None:
    """Raise when option keys repeat, a parent is unknown, or nesting exceeds `max_depth`."""
    by_key: dict[str, Option] = {}
    for option in options:
        if option.key in by_key:
            raise PydanticCustomError(
                "form.duplicate-option", "option {key} appears twice", {"key": option.key}
            )
        by_key[option.key] = option
    for option in options:
        depth, seen = 1, {option.key}
        parent = option.parent
        while parent is not None:
            if parent not in by_key:
                raise PydanticCustomError(
                    "form.unknown-option", "unknown parent option {key}", {"key": parent}
                )
            if parent in seen or depth >= max_depth:
                raise PydanticCustomError(
                    "form.option-depth",
                    "option {key} is nested deeper than {depth} level(s)",
                    {"key": option.key, "depth": max_depth},
                )
            seen.add(parent)
            depth += 1
            parent = by_key[parent].parent


class _Base(SpecModel):
    """Options every field has, layout-only ones included."""

    key: Key
    label: Label | None = None
    description: Label | None = None
    visible_if: Expr | None = None
    width: Width | None = None
    retired: bool = False


class _Input(_Base):
    """Options of fields that hold a value."""

    help: Label | None = None
    placeholder: Label | None = None
    required: bool = False
    required_if: Expr | None = None
    read_only: bool = False
    default: JsonValue = None
    default_expr: Expr | None = None
    unique: bool = False
    validations: tuple[Validation, ...] = ()

    @model_validator(mode="after")
    def _one_default(self) -> _Input:
        if self.default is not None and self.default_expr is not None:
            raise PydanticCustomError(
                "form.conflicting-options", "give either default or default_expr, not both"
            )
        return self


class _Lengths(_Input):
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Lengths:
        if self.min_length is not None and self.max_length is not None:
            _require_order(self.min_length, self.max_length, "min_length", "max_length")
        return self


def _require_order(low: object, high: object, low_name: str, high_name: str) -> None:
    if low > high:  # type: ignore[operator]
        raise PydanticCustomError(
            "form.bad-range", "{low} must not exceed {high}", {"low": low_name, "high": high_name}
        )


class TextField(_Lengths):
    type: Literal["text"]
    regex: str | None = None
    scan: bool = Field(False, description="Offer barcode/QR scanning as input")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise PydanticCustomError(
                    "form.bad-regex", "invalid regular expression: {error}", {"error": str(err)}
                ) from err
        return value


class TextareaField(_Lengths):
    type: Literal["textarea"]
    rows: Annotated[int, Field(ge=1, le=50)] | None = None


class RichTextField(_Lengths):
    type: Literal["rich_text"]


class _Numeric(_Input):
    min: float | None = None
    max: float | None = None
    decimals: Annotated[int, Field(ge=0, le=10)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Numeric:
        if self.min is not None and self.max is not None:
            _require_order(self.min, self.max, "min", "max")
        return self


class NumberField(_Numeric):
    type: Literal["number"]
    unit: Label | None = None


class MoneyField(_Numeric):
    type: Literal["money"]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"


class PercentField(_Numeric):
    type: Literal["percent"]


class DateField(_Input):
    type: Literal["date"]
    min: dt.date | None = None
    max: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DateField:
        if self.min is not None and self.max is not None:
            _require_order(self.min, self.max, "min", "max")
        return self


class DatetimeField(_Input):
    type: Literal["datetime"]
    min: dt.datetime | None = None
    max: dt.datetime | None = None
    timezone: str | None = Field(None, description="IANA zone to show values in; UTC is stored")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise PydanticCustomError(
                    "form.unknown-timezone", "unknown time zone {zone}", {"zone": value}
                ) from err
        return value


class TimeField(_Input):
    type: Literal["time"]
    min: dt.time | None = None
    max: dt.time | None = None


class DateRangeField(_Input):
    type: Literal["date_range"]
    min: dt.date | None = None
    max: dt.date | None = None


class _Choice(_Input):
    options: tuple[Option, ...] = ()
    option_set: Key | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Choice:
        if bool(self.options) == (self.option_set is not None):
            raise PydanticCustomError(
                "form.option-source", "give either options or option_set, exactly one"
            )
        check_option_tree(self.options, max_depth=self._max_depth())
        return self

    def _max_depth(self) -> int:
        return 2


class SelectField(_Choice):
    type: Literal["select"]
    display: Literal["radio", "dropdown"] = "dropdown"


class MultiselectField(_Choice):
    type: Literal["multiselect"]
    display: Literal["checkboxes", "dropdown"] = "dropdown"
    min_items: Annotated[int, Field(ge=0)] | None = None
    max_items: Annotated[int, Field(ge=1)] | None = None


class CascadeLevel(SpecModel):
    key: Key
    label: Label


class CascadeField(_Choice):
    type: Literal["cascade"]
    levels: Annotated[tuple[CascadeLevel, ...], Field(min_length=2, max_length=6)]

    def _max_depth(self) -> int:
        return len(self.levels)


class BooleanField(_Input):
    type: Literal["boolean"]
    display: Literal["checkbox", "switch"] = "checkbox"


class RatingField(_Input):
    type: Literal["rating"]
    max: Annotated[int, Field(ge=1, le=10)] = 5


class EmailField(_Input):
    type: Literal["email"]


class PhoneField(_Input):
    type: Literal["phone"]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "CN"


class UrlField(_Input):
    type: Literal["url"]
    schemes: tuple[Literal["http", "https", "mailto", "ftp"], ...] = ("http", "https")


AddressPart = Literal["province", "city", "district", "detail"]


class AddressField(_Input):
    type: Literal["address"]
    parts: Annotated[tuple[AddressPart, ...], Field(min_length=1)] = (
        "province",
        "city",
        "district",
        "detail",
    )

    @field_validator("parts")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("form.duplicate-key", "address parts repeat")
        return value


class LocationField(_Input):
    type: Literal["location"]
    accuracy: bool = Field(True, description="Record the accuracy radius in metres")
    max_accuracy_m: Annotated[float, Field(gt=0)] | None = None


FileType = Annotated[str, StringConstraints(pattern=r"^(\.[A-Za-z0-9]+|[a-z]+/[a-z0-9.+*-]+)$")]


class _Files(_Input):
    multiple: bool = False
    max_files: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_size_mb: Annotated[float, Field(gt=0, le=2048)] | None = None
    accept: tuple[FileType, ...] = ()


class ImageField(_Files):
    type: Literal["image"]
    watermark: bool = Field(False, description="Stamp time and place on captured photos")


class AttachmentField(_Files):
    type: Literal["attachment"]


class SignatureField(_Files):
    type: Literal["signature"]


class UserField(_Input):
    type: Literal["user"]
    multiple: bool = False


class DepartmentField(_Input):
    type: Literal["department"]
    multiple: bool = False


class RelationField(_Input):
    type: Literal["relation"]
    form: FormRef
    multiple: bool = False
    inverse: Key | None = Field(None, description="Field of the target form that links back")
    on_delete: Literal["refuse", "clear"] = "refuse"
    filter: Expr | None = Field(None, description="Only target records where this holds")
    display_field: Key | None = None


class LookupField(_Base):
    type: Literal["lookup"]
    relation: Key
    field: Key


Aggregate = Literal["count", "sum", "avg", "min", "max"]


class RollupField(_Base):
    type: Literal["rollup"]
    relation: Key = Field(description="A relation or subform field of this form")
    aggregate: Aggregate
    field: Key | None = None
    filter: Expr | None = None

    @model_validator(mode="after")
    def _field_given(self) -> RollupField:
        if self.aggregate != "count" and self.field is None:
            raise PydanticCustomError(
                "form.missing-option", "{aggregate} needs a field", {"aggregate": self.aggregate}
            )
        return self


ResultType = Literal["text", "number", "money", "percent", "boolean", "date", "datetime", "time"]


class FormulaField(_Base):
    type: Literal["formula"]
    expr: Expr
    result_type: ResultType
    option_set: Key | None = Field(None, description="Show a text result with these labels")
    decimals: Annotated[int, Field(ge=0, le=10)] | None = None


def check_autonumber_pattern(pattern: str) -> str:
    """Raise unless `pattern` has one `{###}` sequence and only known date tokens."""
    tokens = _AUTONUMBER_TOKEN.findall(pattern)
    stripped = _AUTONUMBER_TOKEN.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        raise PydanticCustomError("form.bad-autonumber-pattern", "unbalanced braces")
    sequences = [t for t in tokens if t and set(t) == {"#"}]
    if len(sequences) != 1 or len(sequences[0]) > 12:
        raise PydanticCustomError(
            "form.bad-autonumber-pattern", "exactly one sequence token {#...} of 1-12 # is needed"
        )
    unknown = [t for t in tokens if t not in AUTONUMBER_DATE_TOKENS and t not in sequences]
    if unknown:
        raise PydanticCustomError(
            "form.bad-autonumber-pattern", "unknown token {token}", {"token": f"{{{unknown[0]}}}"}
        )
    return pattern


class AutonumberField(_Base):
    type: Literal["autonumber"]
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    reset: Literal["never", "daily", "monthly", "yearly"] = "never"

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return check_autonumber_pattern(value)


class SectionField(_Base):
    type: Literal["section"]
    collapsed: bool = False


class DividerField(_Base):
    type: Literal["divider"]


class DescriptionField(_Base):
    type: Literal["description"]
    content: Label


ChildFieldSpec = Annotated[
    TextField
    | TextareaField
    | RichTextField
    | NumberField
    | MoneyField
    | PercentField
    | DateField
    | DatetimeField
    | TimeField
    | DateRangeField
    | SelectField
    | MultiselectField
    | CascadeField
    | BooleanField
    | RatingField
    | EmailField
    | PhoneField
    | UrlField
    | AddressField
    | LocationField
    | ImageField
    | AttachmentField
    | SignatureField
    | UserField
    | DepartmentField
    | RelationField
    | LookupField
    | RollupField
    | FormulaField
    | AutonumberField
    | SectionField
    | DividerField
    | DescriptionField,
    Field(discriminator="type"),
]


class SubformField(_Base):
    type: Literal["subform"]
    fields: tuple[ChildFieldSpec, ...]
    min_rows: Annotated[int, Field(ge=0)] | None = None
    max_rows: Annotated[int, Field(ge=1)] | None = None
    required: bool = False
    required_if: Expr | None = None
    read_only: bool = False
    validations: tuple[Validation, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> SubformField:
        if not self.fields:
            raise PydanticCustomError("form.empty-subform", "a subform needs at least one field")
        if self.min_rows is not None and self.max_rows is not None:
            _require_order(self.min_rows, self.max_rows, "min_rows", "max_rows")
        return self


FieldSpec = Annotated[ChildFieldSpec | SubformField, Field(discriminator="type")]


def _classes(union: object) -> tuple[type[SpecModel], ...]:
    """The member classes of a (possibly nested, annotated) union of field models."""
    args = typing.get_args(union)
    if not args:
        return (union,)  # type: ignore[return-value]
    if typing.get_origin(union) is Annotated:
        return _classes(args[0])
    return tuple(cls for arg in args for cls in _classes(arg))


FIELD_CLASSES: dict[str, type[SpecModel]] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in _classes(FieldSpec)
}
"""Every field model by its `type` string."""

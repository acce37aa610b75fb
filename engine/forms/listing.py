"""List queries, pure: a filter tree, sort keys, search text and an opaque keyset cursor.

`build_list_query` checks a request against a `CompiledForm` and returns a frozen `ListQuery`
that `engine.storage.form_queries` compiles to SQL. Every problem is reported with a JSON
pointer into the request (`/filter/and/2/value`) as a `ListQueryError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from engine.errors import FieldError, SubmissionError
from engine.expr import Expression, ExpressionError, ExprType, check, parse
from engine.forms import fields as f
from engine.forms.compiler import CompiledForm
from engine.forms.spec import FormSpec

MAX_LIMIT = 200
DEFAULT_LIMIT = 25
MAX_IN_VALUES = 1000
MAX_TEXT_VALUE = 1000
MAX_SEARCH = 200
MAX_FILTER_NODES = 200
MAX_SORT_KEYS = 5

# Value families: how a stored value compares, and which operators make sense for it.
TEXT, CHOICE, NUMBER, DATE, DATETIME, TIME, BOOLEAN, ID = (
    "text", "choice", "number", "date", "datetime", "time", "boolean", "id"
)  # fmt: skip
CHOICES, IDS, LINKS = "choices", "ids", "links"  # JSON arrays of keys / ids; link tables

_ORDERED = ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in")
_BLANK = ("is_blank", "is_not_blank")
OPERATORS: dict[str, frozenset[str]] = {
    TEXT: frozenset((*_ORDERED, "contains", "starts_with", *_BLANK)),
    CHOICE: frozenset(("eq", "ne", "in", "not_in", *_BLANK)),
    NUMBER: frozenset((*_ORDERED, *_BLANK)),
    DATE: frozenset((*_ORDERED[:7], *_BLANK)),
    DATETIME: frozenset((*_ORDERED[:7], *_BLANK)),
    TIME: frozenset((*_ORDERED[:7], *_BLANK)),
    BOOLEAN: frozenset(("eq", "ne", *_BLANK)),
    ID: frozenset(("eq", "ne", "in", "not_in", *_BLANK)),
    CHOICES: frozenset(("contains", "in", "not_in", *_BLANK)),
    IDS: frozenset(("contains", "in", "not_in", *_BLANK)),
    LINKS: frozenset(("contains", "in", "not_in", *_BLANK)),
}
SORTABLE = frozenset((TEXT, CHOICE, NUMBER, DATE, DATETIME, TIME, BOOLEAN, ID))

_FAMILIES: dict[type, str] = {
    f.TextField: TEXT, f.TextareaField: TEXT, f.RichTextField: TEXT, f.EmailField: TEXT,
    f.PhoneField: TEXT, f.UrlField: TEXT, f.AutonumberField: TEXT,
    f.SelectField: CHOICE, f.CascadeField: CHOICE,
    f.NumberField: NUMBER, f.MoneyField: NUMBER, f.PercentField: NUMBER, f.RatingField: NUMBER,
    f.DateField: DATE, f.DatetimeField: DATETIME, f.TimeField: TIME, f.BooleanField: BOOLEAN,
    f.MultiselectField: CHOICES,
}  # fmt: skip
_RESULT_FAMILIES = {"text": TEXT, "boolean": BOOLEAN, "date": DATE, "datetime": DATETIME,
                    "time": TIME, "number": NUMBER, "money": NUMBER, "percent": NUMBER}  # fmt: skip
_PARTS: dict[type, dict[str, str]] = {
    f.AddressField: {"province": TEXT, "city": TEXT, "district": TEXT, "detail": TEXT},
    f.DateRangeField: {"start": DATE, "end": DATE},
    f.LocationField: {"lng": NUMBER, "lat": NUMBER, "accuracy": NUMBER},
}
# System columns: name in requests → (column, family, nullable).
SYSTEM_FIELDS: dict[str, tuple[str, str, bool]] = {
    "id": ("id", ID, False),
    "created_at": ("created_at", DATETIME, False),
    "updated_at": ("updated_at", DATETIME, False),
    "created_by": ("created_by", ID, True),
    "updated_by": ("updated_by", ID, True),
    "owner": ("owner_id", ID, True),
    "version": ("version", NUMBER, False),
}
RELATIVE_DATES = frozenset(
    ("today", "yesterday", "tomorrow", "this_week", "last_week", "next_week",
     "this_month", "last_month", "next_month", "this_year", "last_year")
)  # fmt: skip
RELATIVE_SPANS = frozenset(("last_n_days", "next_n_days"))


class ListQueryError(SubmissionError):
    """A list request does not fit the form; `errors` holds each problem with its path."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(errors, message=f"{errors[0].loc}: {errors[0].message}")
        self.code = errors[0].code


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A name a request may filter or sort on, resolved against the form.

    `via` is the single relation a lookup or dotted name goes through (None: this form);
    `column` is the field key (or system column) in that form, `part` a composite's part.
    """

    name: str
    family: str
    column: str
    part: str | None = None
    via: str | None = None
    target_form: str | None = None
    nullable: bool = True
    system: bool = False


@dataclass(frozen=True, slots=True)
class Relative:
    """A date window relative to today: `today`, `this_week`, `last_n_days` with `days` …"""

    name: str
    days: int = 0


@dataclass(frozen=True, slots=True)
class Condition:
    ref: FieldRef
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: FilterNode


FilterNode = Condition | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class SortKey:
    ref: FieldRef
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A checked list request. `after` holds the cursor's sort-key values (then the id)."""

    form: str
    filter: FilterNode | None
    filter_expr: Expression | None
    sort: tuple[SortKey, ...]
    search: str | None
    limit: int
    after: tuple[Any, ...] | None
    trash: bool
    digest: str


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.items.append(FieldError(loc=path, code=f"list.{code}", message=message))


# --- field names -----------------------------------------------------------------------------


def family_of(field: object) -> str | None:
    """The value family of a field's stored value, or None when it has no single comparable."""
    if isinstance(field, f.FormulaField):
        return _RESULT_FAMILIES.get(str(field.result_type))
    if isinstance(field, f.UserField | f.DepartmentField):
        return IDS if field.multiple else ID
    if isinstance(field, f.RelationField):
        return LINKS if field.multiple else ID
    return _FAMILIES.get(type(field))


def resolve_field(
    form: FormSpec, name: str, forms: Mapping[str, FormSpec] | None = None
) -> FieldRef | None:
    """What `name` refers to: a field, `field.part`, a system field, a lookup, `relation.field`."""
    if name in SYSTEM_FIELDS:
        column, family, nullable = SYSTEM_FIELDS[name]
        return FieldRef(name, family, column, nullable=nullable, system=True)
    head, _, rest = name.partition(".")
    field = form.field_map().get(head)
    if field is None or getattr(field, "retired", False):
        return None
    if isinstance(field, f.LookupField) and not rest:
        return _through(form, name, field.relation, field.field, forms)
    if isinstance(field, f.RelationField) and rest and not field.multiple:
        return _through(form, name, head, rest, forms)
    if rest:
        part_family = _PARTS.get(type(field), {}).get(rest)
        return None if part_family is None else FieldRef(name, part_family, head, part=rest)
    own = family_of(field)
    return None if own is None else FieldRef(name, own, head)


def _through(
    form: FormSpec, name: str, relation: str, key: str, forms: Mapping[str, FormSpec] | None
) -> FieldRef | None:
    link = form.field_map().get(relation)
    if not isinstance(link, f.RelationField) or link.multiple or forms is None:
        return None
    target = forms.get(str(link.form))
    if target is None:
        return None
    inner = resolve_field(target, key, None)
    if inner is None or inner.family in (LINKS,):
        return None
    return FieldRef(
        name, inner.family, inner.column, inner.part, relation, str(link.form),
        system=inner.system,
    )  # fmt: skip


# --- values ----------------------------------------------------------------------------------


def _scalar(family: str, value: Any) -> Any:
    """`value` as the Python value stored for `family`; raises ValueError if it does not fit."""
    if value is None or isinstance(value, dict | list):
        raise ValueError("expected a single value")
    if family in (TEXT, CHOICE, CHOICES):
        if not isinstance(value, str) or len(value) > MAX_TEXT_VALUE:
            raise ValueError(f"expected text of at most {MAX_TEXT_VALUE} characters")
        return value
    if family in (NUMBER,):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("expected a number")
        return value
    if family in (ID, IDS, LINKS):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected a record or user id (an integer)")
        return value
    if family == BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    return _temporal(family, value)


def _temporal(family: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO {family} string")
    if family == DATE:
        return date.fromisoformat(value)
    if family == TIME:
        return time.fromisoformat(value)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _relative(family: str, value: Any) -> Relative | None:
    """A relative date value (`"today"`, `{"last_n_days": 7}`), or None if `value` is not one."""
    if family not in (DATE, DATETIME):
        return None
    if isinstance(value, str) and value in RELATIVE_DATES:
        return Relative(value)
    if isinstance(value, dict) and len(value) == 1:
        ((name, days),) = value.items()
        if name in RELATIVE_SPANS:
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
                raise ValueError(f"{name} takes a whole number of days from 1 to 3660")
            return Relative(name, days)
        raise ValueError(f"unknown relative date {name!r}")
    return None


def date_window(value: Relative, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a relative date window, weeks starting Monday."""
    name = value.name
    if name in ("today", "yesterday", "tomorrow"):
        day = today + timedelta(days={"today": 0, "yesterday": -1, "tomorrow": 1}[name])
        return day, day
    if name == "last_n_days":
        return today - timedelta(days=value.days - 1), today
    if name == "next_n_days":
        return today, today + timedelta(days=value.days - 1)
    shift = {"this": 0, "last": -1, "next": 1}[name.split("_")[0]]
    if name.endswith("week"):
        start = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
        return start, start + timedelta(days=6)
    if name.endswith("year"):
        year = today.year + shift
        return date(year, 1, 1), date(year, 12, 31)
    month = today.year * 12 + today.month - 1 + shift
    start = date(month // 12, month % 12 + 1, 1)
    following = date((month + 1) // 12, (month + 1) % 12 + 1, 1)
    return start, following - timedelta(days=1)


def _condition_value(ref: FieldRef, op: str, raw: Any) -> Any:
    if op in _BLANK:
        if raw is not None:
            raise ValueError(f"{op} takes no value")
        return None
    relative = _relative(ref.family, raw)
    if relative is not None:
        if op in ("in", "not_in", "between"):
            raise ValueError(f"{op} takes dates, not a relative date")
        return relative
    if op in ("in", "not_in") or (op == "contains" and isinstance(raw, list)):
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN_VALUES:
            raise ValueError(f"{op} takes a list of 1 to {MAX_IN_VALUES} values")
        return tuple(_scalar(ref.family, item) for item in raw)
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("between takes [low, high]")
        return tuple(_scalar(ref.family, item) for item in raw)
    value = _scalar(ref.family, raw)
    if op in ("contains", "starts_with") and ref.family == TEXT and not value:
        raise ValueError(f"{op} takes a non-empty text")
    return value


# --- filters ---------------------------------------------------------------------------------


class _FilterReader:
    def __init__(self, form: FormSpec, forms: Mapping[str, FormSpec] | None, errors: _Errors):
        self.form, self.forms, self.errors, self.nodes = form, forms, errors, 0

    def read(self, raw: Any, path: str) -> FilterNode | None:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            if self.nodes == MAX_FILTER_NODES + 1:
                self.errors.add(path, "filter-too-large", f"over {MAX_FILTER_NODES} nodes")
            return None
        if not isinstance(raw, dict):
            self.errors.add(path, "bad-filter", "a filter node is an object")
            return None
        for group, kind in (("and", AllOf), ("or", AnyOf)):
            if group in raw:
                return self._group(raw, group, kind, path)
        if "not" in raw:
            if len(raw) != 1:
                self.errors.add(path, "bad-filter", "`not` stands alone in its object")
                return None
            inner = self.read(raw["not"], f"{path}/not")
            return None if inner is None else Not(inner)
        return self._leaf(raw, path)

    def _group(self, raw: dict[str, Any], group: str, kind: Any, path: str) -> FilterNode | None:
        items = raw[group]
        if len(raw) != 1 or not isinstance(items, list) or not items:
            self.errors.add(path, "bad-filter", f"`{group}` takes a non-empty list, alone")
            return None
        read = [self.read(item, f"{path}/{group}/{i}") for i, item in enumerate(items)]
        found: FilterNode = kind(tuple(node for node in read if node is not None))
        return found

    def _leaf(self, raw: dict[str, Any], path: str) -> Condition | None:
        unknown = set(raw) - {"field", "op", "value"}
        if unknown or not isinstance(raw.get("field"), str) or not isinstance(raw.get("op"), str):
            self.errors.add(path, "bad-filter", "a condition is {field, op, value}")
            return None
        ref = resolve_field(self.form, raw["field"], self.forms)
        if ref is None:
            self.errors.add(f"{path}/field", "unknown-field", f"no field {raw['field']!r}")
            return None
        op = raw["op"]
        if op not in OPERATORS[ref.family]:
            allowed = ", ".join(sorted(OPERATORS[ref.family]))
            self.errors.add(f"{path}/op", "bad-operator", f"{op!r} is not one of: {allowed}")
            return None
        try:
            value = _condition_value(ref, op, raw.get("value"))
        except ValueError as err:
            self.errors.add(f"{path}/value", "bad-value", str(err))
            return None
        return Condition(ref, op, value)


# --- sort and cursor -------------------------------------------------------------------------


def _read_sort(
    form: FormSpec, sort: Sequence[str], forms: Mapping[str, FormSpec] | None, errors: _Errors
) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    if len(sort) > MAX_SORT_KEYS:
        errors.add("/sort", "too-many-sort-keys", f"at most {MAX_SORT_KEYS} sort keys")
        return ()
    for index, item in enumerate(sort):
        name = item[1:] if item.startswith(("-", "+")) else item
        ref = resolve_field(form, name, forms)
        if ref is None:
            errors.add(f"/sort/{index}", "unknown-field", f"no field {name!r}")
        elif ref.family not in SORTABLE:
            errors.add(f"/sort/{index}", "not-sortable", f"{name!r} holds several values")
        elif ref.name != "id":
            keys.append(SortKey(ref, descending=item.startswith("-")))
    return tuple(keys)


def encode_cursor(query: ListQuery, row_keys: Sequence[Any]) -> str:
    """The cursor after a row whose sort-key values (then id) are `row_keys`."""
    values = [_cursor_value(value) for value in row_keys]
    payload = json.dumps({"h": query.digest, "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _cursor_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() else str(value)
    return value


def _decode_cursor(
    cursor: str, digest: str, sort: tuple[SortKey, ...], errors: _Errors
) -> tuple[Any, ...] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        hash_, values = data["h"], data["v"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        errors.add("/cursor", "bad-cursor", "the cursor is not one this server issued")
        return None
    if hash_ != digest:
        errors.add("/cursor", "cursor-mismatch", "the cursor belongs to a different query")
        return None
    families = [key.ref for key in sort] + [SYSTEM_FIELDS_REF]
    if not isinstance(values, list) or len(values) != len(families):
        errors.add("/cursor", "bad-cursor", "the cursor does not fit this query's sort")
        return None
    try:
        return tuple(_cursor_key(ref, value) for ref, value in zip(families, values, strict=True))
    except (ValueError, TypeError):
        errors.add("/cursor", "bad-cursor", "the cursor holds a value of the wrong type")
        return None


def _cursor_key(ref: FieldRef, value: Any) -> Any:
    if value is None:
        if not ref.nullable:
            raise ValueError("null key")
        return None
    if ref.family == NUMBER and isinstance(value, str):
        return Decimal(value)
    return _scalar(CHOICE if ref.family == TEXT else ref.family, value)


SYSTEM_FIELDS_REF = FieldRef("id", ID, "id", nullable=False, system=True)


def _digest(form: str, parts: Mapping[str, Any]) -> str:
    text = json.dumps({"form": form, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# --- building --------------------------------------------------------------------------------


def build_list_query(
    form: CompiledForm,
    *,
    forms: Mapping[str, FormSpec] | None = None,
    filter: Any = None,
    filter_expr: str | None = None,
    sort: Sequence[str] = (),
    search: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    trash: bool = False,
) -> ListQuery:
    """Check a list request against `form` (and the app's `forms`, for lookups).

    Raises:
        ListQueryError: every problem found, each with a `list.*` code and a request path.
    """
    errors = _Errors()
    node = (
        None if filter is None else _FilterReader(form.spec, forms, errors).read(filter, "/filter")
    )
    expression = _read_expression(form, filter_expr, errors)
    keys = _read_sort(form.spec, sort, forms, errors)
    if search is not None and (len(search) > MAX_SEARCH or not search.strip()):
        errors.add("/q", "bad-search", f"search text is 1 to {MAX_SEARCH} characters")
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        errors.add("/limit", "bad-limit", f"limit is 1 to {MAX_LIMIT}")
    digest = _digest(form.key, {"filter": filter, "expr": filter_expr, "sort": list(sort),
                                "q": search, "trash": trash})  # fmt: skip
    after = None if cursor is None else _decode_cursor(cursor, digest, keys, errors)
    if errors.items:
        raise ListQueryError(errors.items)
    return ListQuery(form.key, node, expression, keys, search, size, after, trash, digest)


def _read_expression(form: CompiledForm, text: str | None, errors: _Errors) -> Expression | None:
    if text is None:
        return None
    try:
        expression = parse(text)
        found = check(expression, form.catalog)
    except ExpressionError as err:
        errors.add("/filter_expr", "bad-filter-expr", f"{err.code}: {err}")
        return None
    if not ExprType.BOOLEAN.accepts(found):
        errors.add("/filter_expr", "bad-filter-expr", f"the filter is {found}, not boolean")
        return None
    return expression


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OPERATORS",
    "SYSTEM_FIELDS",
    "AllOf",
    "AnyOf",
    "Condition",
    "FieldRef",
    "FilterNode",
    "ListQuery",
    "ListQueryError",
    "Not",
    "Relative",
    "SortKey",
    "build_list_query",
    "date_window",
    "encode_cursor",
    "family_of",
    "resolve_field",
]

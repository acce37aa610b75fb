"""The subform codec (a list of row mappings, each cell coerced by its child field) and the
codecs of computed fields, which take no input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.errors import FieldError
from engine.forms import fields as f
from engine.forms.values._base import (
    CODECS,
    Coercion,
    InvalidValue,
    InvalidValues,
    register,
    wrong_type,
)
from engine.forms.values._composite import read_id
from engine.forms.values._numbers import number_to_json
from engine.forms.values._temporal import _datetime_json

MAX_ROWS = 10_000
ROW_ID = "id"


def coerce_cell(field: Any, raw: Any, run: Coercion, errors: list[FieldError]) -> Any:
    """Coerce one value; on failure append located errors and return None."""
    try:
        return CODECS[type(field)].coerce(field, raw, run)
    except InvalidValue as err:
        loc = f"{run.loc}/{err.suffix}" if err.suffix else run.loc
        errors.append(FieldError(loc, err.code, err.message))
    except InvalidValues as err:
        errors.extend(err.errors)
    return None


def _column(current: Any, key: str) -> tuple[Any, ...]:
    """The stored values of one subform column, to let retired options already held stay."""
    if not isinstance(current, list | tuple):
        return ()
    return tuple(row.get(key) for row in current if isinstance(row, Mapping))


def _row(
    field: f.SubformField, raw: Any, run: Coercion, index: int, errors: list[FieldError]
) -> dict[str, Any]:
    base = f"{run.loc}/{index}"
    if not isinstance(raw, Mapping):
        errors.append(FieldError(base, "submission.wrong-type", "a row is an object"))
        return {}
    children = {child.key: child for child in field.fields}
    row: dict[str, Any] = {}
    for name, value in raw.items():
        child = children.get(name)
        if name == ROW_ID and child is None:
            row[ROW_ID] = _row_id(value, run, f"{base}/{name}", errors)
        elif child is None or CODECS.get(type(child)) is None:
            message = f"no field {str(name)[:64]!r} in the rows of {field.key!r}"
            errors.append(FieldError(f"{base}/{name}", "submission.unknown-field", message))
        elif not CODECS[type(child)].computed:
            cell = run.at(f"{base}/{name}", current=_column(run.current, name), owner=field.key)
            row[name] = coerce_cell(child, value, cell, errors)
    return row


def _row_id(raw: Any, run: Coercion, loc: str, errors: list[FieldError]) -> int | None:
    """A row's own id, sent back from a read; kept so storage may match rows."""
    if raw is None:
        return None
    try:
        return read_id(raw, run)
    except InvalidValue as err:
        errors.append(FieldError(loc, err.code, err.message))
        return None


def _subform(field: f.SubformField, raw: Any, run: Coercion) -> list[dict[str, Any]]:
    """Rows as dicts of the cells given; computed cells in the input are ignored."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise wrong_type("a list of rows", raw)
    if len(raw) > MAX_ROWS:
        raise InvalidValue("submission.too-many", f"at most {MAX_ROWS} rows")
    errors: list[FieldError] = []
    rows = [_row(field, item, run, index, errors) for index, item in enumerate(raw)]
    if errors:
        raise InvalidValues(errors)
    if field.max_rows is not None and len(rows) > field.max_rows:
        raise InvalidValue("submission.too-many", f"at most {field.max_rows} rows")
    if field.min_rows is not None and len(rows) < field.min_rows:
        raise InvalidValue("submission.too-few", f"at least {field.min_rows} rows")
    return rows


def _rows_json(field: f.SubformField, value: Any) -> list[dict[str, Any]]:
    children = {child.key: child for child in field.fields}
    out = []
    for row in value or ():
        item: dict[str, Any] = {}
        for name, cell in row.items():
            child = children.get(name)
            codec = CODECS.get(type(child)) if child is not None else None
            item[name] = codec.to_json(child, cell) if codec is not None else json_value(cell)
        out.append(item)
    return out


def json_value(value: Any) -> Any:
    """Any canonical value as JSON: numbers, ISO dates and times, lists and objects."""
    if isinstance(value, Decimal):
        return number_to_json(None, value)
    if isinstance(value, dt.datetime):
        return _datetime_json(None, value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    return value


def _computed(field: Any, raw: Any, run: Coercion) -> Any:
    raise InvalidValue("submission.read-only", f"{field.key!r} is computed and takes no input")


def _any_json(field: Any, value: Any) -> Any:
    return json_value(value)


register(f.SubformField, coerce=_subform, to_json=_rows_json)
register(
    f.FormulaField,
    f.LookupField,
    f.RollupField,
    f.AutonumberField,
    coerce=_computed,
    to_json=_any_json,
    computed=True,
)

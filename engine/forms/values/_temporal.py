"""Date and time codecs: date, datetime (aware, UTC), time and date range.

Input is ISO 8601 text or the Python value. A datetime without an offset is read in the field's
`timezone`, else in the caller's time zone (EvalContext.timezone, default UTC), and is stored
in UTC. Lenient (CSV) input also takes `2026/11/22` and `2026-11-22 09:30` forms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from engine.forms import fields as f
from engine.forms.values._base import Coercion, InvalidValue, register, wrong_type

MAX_TEMPORAL_TEXT = 40


def _text(raw: str, run: Coercion) -> str:
    text = raw.strip()
    if len(text) > MAX_TEMPORAL_TEXT:
        raise InvalidValue("submission.invalid-date", "not a date")
    if run.lenient:
        text = text.replace("/", "-").replace(".", "-") if ":" not in text else text
    return text


def read_date(raw: Any, run: Coercion) -> dt.date | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, dt.datetime):
        if run.lenient and raw.time() == dt.time(0) and raw.tzinfo is None:
            return raw.date()
        raise wrong_type("a date", raw)
    if isinstance(raw, dt.date):
        return raw
    if not isinstance(raw, str):
        raise wrong_type("an ISO date", raw)
    try:
        return dt.date.fromisoformat(_text(raw, run))
    except ValueError as err:
        raise InvalidValue("submission.invalid-date", "not a date (YYYY-MM-DD)") from err


def _in_range(value: Any, low: Any, high: Any, *, suffix: str = "") -> None:
    if low is not None and value < low:
        raise InvalidValue("submission.out-of-range", f"must not be before {low}", suffix=suffix)
    if high is not None and value > high:
        raise InvalidValue("submission.out-of-range", f"must not be after {high}", suffix=suffix)


def _date(field: f.DateField, raw: Any, run: Coercion) -> dt.date | None:
    value = read_date(raw, run)
    if value is not None:
        _in_range(value, field.min, field.max)
    return value


def _aware(value: dt.datetime, zone: str) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as err:  # year 1 or 9999 pushed out of range by the offset
        raise InvalidValue("submission.out-of-range", "the date is out of range") from err


def _datetime(field: f.DatetimeField, raw: Any, run: Coercion) -> dt.datetime | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if run.lenient:
            text = text.replace("/", "-")
        if len(text) > MAX_TEMPORAL_TEXT:
            raise InvalidValue("submission.invalid-datetime", "not a date and time")
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError as err:
            raise InvalidValue(
                "submission.invalid-datetime", "not a date and time (ISO 8601)"
            ) from err
    else:
        raise wrong_type("an ISO date and time", raw)
    value = _aware(value, field.timezone or run.timezone)
    _in_range(value, _bound(field.min, field), _bound(field.max, field))
    return value


def _bound(value: dt.datetime | None, field: f.DatetimeField) -> dt.datetime | None:
    return None if value is None else _aware(value, field.timezone or "UTC")


def _time(field: f.TimeField, raw: Any, run: Coercion) -> dt.time | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, dt.time):
        value = raw
    elif isinstance(raw, str) and len(raw) <= MAX_TEMPORAL_TEXT:
        try:
            value = dt.time.fromisoformat(raw.strip())
        except ValueError as err:
            raise InvalidValue("submission.invalid-time", "not a time (HH:MM[:SS])") from err
    else:
        raise wrong_type("an ISO time", raw)
    if value.tzinfo is not None:
        raise InvalidValue("submission.invalid-time", "a time of day has no offset")
    _in_range(value, field.min, field.max)
    return value


def _range_parts(raw: Any, run: Coercion) -> tuple[Any, Any]:
    if isinstance(raw, dict):
        unknown = set(raw) - {"start", "end"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidValue("submission.unknown-field", f"no part {name!r}", suffix=name)
        return raw.get("start"), raw.get("end")
    if isinstance(raw, list | tuple) and len(raw) == 2:
        return raw[0], raw[1]
    if run.lenient and isinstance(raw, str) and "~" in raw:
        start, end = raw.split("~", 1)
        return start, end
    raise wrong_type("{start, end}", raw)


def _date_range(field: f.DateRangeField, raw: Any, run: Coercion) -> dict[str, Any] | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    start_raw, end_raw = _range_parts(raw, run)
    start, end = _part(start_raw, run, "start"), _part(end_raw, run, "end")
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = "start" if start is None else "end"
        message = "a range needs a start and an end"
        raise InvalidValue("submission.required", message, suffix=missing)
    if start > end:
        raise InvalidValue("submission.range-order", "the start is after the end", suffix="end")
    _in_range(start, field.min, field.max, suffix="start")
    _in_range(end, field.min, field.max, suffix="end")
    return {"start": start, "end": end}


def _part(raw: Any, run: Coercion, name: str) -> dt.date | None:
    try:
        return read_date(raw, run)
    except InvalidValue as err:
        raise InvalidValue(err.code, err.message, suffix=name) from err


def _iso(field: Any, value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _datetime_json(field: Any, value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


def _range_json(field: Any, value: dict[str, dt.date] | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"start": value["start"].isoformat(), "end": value["end"].isoformat()}


register(f.DateField, coerce=_date, to_json=_iso)
register(f.DatetimeField, coerce=_datetime, to_json=_datetime_json)
register(f.TimeField, coerce=_time, to_json=_iso)
register(f.DateRangeField, coerce=_date_range, to_json=_range_json)

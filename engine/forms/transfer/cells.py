"""Cell codecs: a field's API value as a spreadsheet cell for people, and a cell back to a value.

One codec per field `type` in `CELL_CODECS`. `encode` gives what export writes; `decode` gives the
raw value that `engine.forms.values.coerce(..., lenient=True)` then checks, so every rule of the
API still applies. Whatever `encode` writes, `decode` reads back to the same value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.labels import label_text

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "是", "对", "√", "✓", "on", "x"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "否", "不", "×", "✗", "off"})
BOOLEAN_TEXT = {"en": ("Yes", "No"), "zh": ("是", "否")}
LIST_SEPARATORS = (";", "；")


class CellError(ValueError):
    """A cell that cannot be read as the field's value; `code` is a transfer error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Options:
    """The options of a choice field: key ↔ label lookups in every language."""

    labels: Mapping[str, Any]  # key → Label
    by_text: Mapping[str, str]  # casefolded key or label (any language) → key

    @classmethod
    def build(cls, options: Any) -> Options:
        labels: dict[str, Any] = {}
        by_text: dict[str, str] = {}
        for option in options:
            labels[option.key] = option.label
            texts = option.label.values() if isinstance(option.label, dict) else [option.label]
            for text in texts:
                by_text.setdefault(_fold(text), option.key)
        for key in labels:  # a key always wins over a label that happens to read the same
            by_text[_fold(key)] = key
        return cls(labels=labels, by_text=by_text)

    def text(self, key: str, lang: str) -> str:
        label = self.labels.get(key)
        return key if label is None else label_text(label, lang)

    def key(self, text: str) -> str:
        return self.by_text.get(_fold(text), text)


@dataclass(frozen=True, slots=True)
class CellContext:
    """What codecs need beyond the field: the language and the field's options, if any."""

    lang: str = "en"
    options: Options | None = None
    for_xlsx: bool = False


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


# --- encoders ----------------------------------------------------------------------------------


def _encode_plain(value: Any, _field: Any, _ctx: CellContext) -> Any:
    return value


def _encode_number(value: Any, _field: Any, ctx: CellContext) -> Any:
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError:
            return value
    if isinstance(value, Decimal) and ctx.for_xlsx:
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _encode_date(value: Any, _field: Any, ctx: CellContext) -> Any:
    if ctx.for_xlsx and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value.isoformat() if isinstance(value, dt.date) else value


def _encode_iso(value: Any, _field: Any, _ctx: CellContext) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.time) else value


def _encode_range(value: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(value, Mapping):
        return f"{value.get('start') or ''}/{value.get('end') or ''}"
    return value


def _encode_choice(value: Any, _field: Any, ctx: CellContext) -> Any:
    return ctx.options.text(str(value), ctx.lang) if ctx.options else value


def _encode_choices(value: Any, _field: Any, ctx: CellContext) -> Any:
    texts = [ctx.options.text(str(v), ctx.lang) if ctx.options else str(v) for v in value]
    if any(sep in text for text in texts for sep in LIST_SEPARATORS):
        return _json(list(value))
    return "; ".join(texts)


def _encode_boolean(value: Any, _field: Any, ctx: CellContext) -> Any:
    if ctx.for_xlsx:
        return bool(value)
    yes, no = BOOLEAN_TEXT.get(ctx.lang, BOOLEAN_TEXT["en"])
    return yes if value else no


def _encode_ids(value: Any, field: Any, _ctx: CellContext) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return value


def _encode_document(value: Any, _field: Any, _ctx: CellContext) -> Any:
    return _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --- decoders ----------------------------------------------------------------------------------


def _decode_text(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a phone number typed into Excel comes back as 13800000000.0
    return cell if isinstance(cell, str) else str(cell)


def _decode_number(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(cell, str):
        return cell.strip().replace(",", "").replace("，", "")
    return cell


def _as_date_value(cell: Any) -> Any:
    from engine.forms.transfer.readers import excel_serial_to_datetime

    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return excel_serial_to_datetime(float(cell))
    return cell


def _decode_date(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    cell = _as_date_value(cell)
    if isinstance(cell, dt.datetime):
        return cell.date().isoformat()
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell).strip()


def _decode_datetime(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    cell = _as_date_value(cell)
    if isinstance(cell, dt.datetime):
        return cell.isoformat()
    if isinstance(cell, dt.date):
        return dt.datetime.combine(cell, dt.time()).isoformat()
    return str(cell).strip()


def _decode_time(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(cell, dt.datetime):
        return cell.time().isoformat()
    if isinstance(cell, dt.time):
        return cell.isoformat()
    if isinstance(cell, float) and 0 <= cell < 1:  # an Excel time is a fraction of a day
        seconds = round(cell * 86400)
        return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60).isoformat()
    return str(cell).strip()


def _decode_range(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    text = str(cell).strip()
    if text.startswith("{"):
        return _decode_json(text)
    for separator in ("/", "~", "～", " - "):
        if separator in text:
            start, _, end = text.partition(separator)
            return {"start": start.strip() or None, "end": end.strip() or None}
    raise CellError("transfer.bad-cell", "write a date range as start/end: 2026-01-01/2026-01-31")


def _decode_choice(cell: Any, _field: Any, ctx: CellContext) -> Any:
    text = _decode_text(cell, _field, ctx).strip()
    return ctx.options.key(text) if ctx.options else text


def _split_list(cell: Any) -> list[str]:
    text = str(cell).strip()
    for separator in LIST_SEPARATORS[1:]:
        text = text.replace(separator, LIST_SEPARATORS[0])
    return [part.strip() for part in text.split(LIST_SEPARATORS[0]) if part.strip()]


def _decode_choices(cell: Any, _field: Any, ctx: CellContext) -> Any:
    if isinstance(cell, str) and cell.strip().startswith("["):
        return _decode_json(cell)
    parts = _split_list(_decode_text(cell, _field, ctx))
    return [ctx.options.key(part) if ctx.options else part for part in parts]


def _decode_boolean(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(cell, bool):
        return cell
    word = _fold(_decode_text(cell, _field, _ctx))
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError("transfer.bad-cell", f"{cell!r} is not yes/no")


def _decode_int(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    return cell.strip() if isinstance(cell, str) else cell


def _decode_ids(cell: Any, field: Any, ctx: CellContext) -> Any:
    if not getattr(field, "multiple", False):
        return _decode_int(cell, field, ctx)
    if isinstance(cell, str) and cell.strip().startswith("["):
        return _decode_json(cell)
    return [_decode_int(part, field, ctx) for part in _split_list(_decode_text(cell, field, ctx))]


def _decode_json_cell(cell: Any, _field: Any, _ctx: CellContext) -> Any:
    return _decode_json(str(cell))


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CellError("transfer.bad-json", f"not valid JSON at character {err.pos}") from err


Encoder = Callable[[Any, Any, CellContext], Any]
Decoder = Callable[[Any, Any, CellContext], Any]


@dataclass(frozen=True, slots=True)
class CellCodec:
    encode: Encoder
    decode: Decoder


_TEXT = CellCodec(_encode_plain, _decode_text)
_NUMBER = CellCodec(_encode_number, _decode_number)
_DOCUMENT = CellCodec(_encode_document, _decode_json_cell)
_IDS = CellCodec(_encode_ids, _decode_ids)

CELL_CODECS: dict[str, CellCodec] = {
    "text": _TEXT,
    "textarea": _TEXT,
    "rich_text": _TEXT,
    "email": _TEXT,
    "phone": _TEXT,
    "url": _TEXT,
    "number": _NUMBER,
    "money": _NUMBER,
    "percent": _NUMBER,
    "rating": CellCodec(_encode_plain, _decode_int),
    "date": CellCodec(_encode_date, _decode_date),
    "datetime": CellCodec(_encode_iso, _decode_datetime),
    "time": CellCodec(_encode_iso, _decode_time),
    "date_range": CellCodec(_encode_range, _decode_range),
    "select": CellCodec(_encode_choice, _decode_choice),
    "cascade": CellCodec(_encode_choice, _decode_choice),
    "multiselect": CellCodec(_encode_choices, _decode_choices),
    "boolean": CellCodec(_encode_boolean, _decode_boolean),
    "address": _DOCUMENT,
    "location": _DOCUMENT,
    "image": _DOCUMENT,
    "attachment": _DOCUMENT,
    "signature": _DOCUMENT,
    "subform": _DOCUMENT,
    "user": _IDS,
    "department": _IDS,
    "relation": _IDS,
    "formula": _TEXT,
    "autonumber": _TEXT,
    "lookup": CellCodec(_encode_document, _decode_text),
    "rollup": _NUMBER,
}


def encode_cell(field: Any, value: Any, ctx: CellContext) -> Any:
    """The cell export writes for `value` (None stays an empty cell)."""
    if value is None or value == [] or value == {}:
        return None
    codec = CELL_CODECS.get(str(field.type), _TEXT)
    if str(field.type) == "formula":
        return _encode_formula(field, value, ctx)
    return codec.encode(value, field, ctx)


def _encode_formula(field: Any, value: Any, ctx: CellContext) -> Any:
    result = str(getattr(field, "result_type", "text"))
    if result == "boolean":
        return _encode_boolean(value, field, ctx)
    if ctx.options and isinstance(value, str):
        return ctx.options.text(value, ctx.lang)
    return CELL_CODECS.get(result, _TEXT).encode(value, field, ctx)


def decode_cell(field: Any, cell: Any, ctx: CellContext) -> Any:
    """The raw value for `cell`, ready for lenient coercion; None for a blank cell.

    Raises:
        CellError: when the cell cannot be read at all (bad JSON, not a yes/no, ...).
    """
    if _blank(cell):
        return None
    codec = CELL_CODECS.get(str(field.type), _TEXT)
    return codec.decode(cell, field, ctx)


__all__ = [
    "CELL_CODECS",
    "CellCodec",
    "CellContext",
    "CellError",
    "Options",
    "decode_cell",
    "encode_cell",
]

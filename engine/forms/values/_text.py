"""Text codecs: text, textarea, rich text, email, phone and URL, all canonical as `str`.

Single-line kinds (text, email, phone, URL) are trimmed; textarea and rich text keep their
content as sent. Whitespace-only input is blank. Lengths count characters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from engine.forms import fields as f
from engine.forms.values._base import Coercion, InvalidValue, register, same, wrong_type

# Absolute caps when the definition sets no max_length. Text matches its default column
# (VARCHAR(255)); email, phone and URL match theirs.
TEXT_CAPS: dict[type, int] = {
    f.TextField: 255,
    f.TextareaField: 65_536,
    f.RichTextField: 1_048_576,
    f.EmailField: 254,
    f.PhoneField: 32,
    f.UrlField: 2048,
}
# A regex runs only on values up to this length, which bounds backtracking on bad patterns.
REGEX_MAX_INPUT = 4096

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{2,30}(( ?(ext\.?|x|#|转) ?)[0-9]{1,6})?", re.IGNORECASE)
_FORBIDDEN = re.compile(r"[\x00]")


@lru_cache(maxsize=1024)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A definition's regex, compiled once per process."""
    return re.compile(pattern)


def text_limit(field: Any) -> int:
    """The most characters the field accepts: its max_length, else the type's cap."""
    max_length = getattr(field, "max_length", None)
    return max_length if max_length is not None else TEXT_CAPS[type(field)]


def _read_text(field: Any, raw: Any, run: Coercion, *, trim: bool) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw
    elif run.lenient and isinstance(raw, int | float) and not isinstance(raw, bool):
        text = str(raw)
    else:
        raise wrong_type("text", raw)
    if not text.strip():
        return None
    if trim:
        text = text.strip()
    if _FORBIDDEN.search(text):
        raise InvalidValue("submission.invalid-character", "text may not contain NUL characters")
    _check_length(field, text)
    return text


def _check_length(field: Any, text: str) -> None:
    limit = text_limit(field)
    if len(text) > limit:
        raise InvalidValue("submission.too-long", f"at most {limit} characters are allowed")
    min_length = getattr(field, "min_length", None)
    if min_length is not None and len(text) < min_length:
        raise InvalidValue("submission.too-short", f"at least {min_length} characters are needed")


def _text(field: f.TextField, raw: Any, run: Coercion) -> str | None:
    text = _read_text(field, raw, run, trim=True)
    if text is not None and field.regex is not None:
        if len(text) > REGEX_MAX_INPUT or not compiled_pattern(field.regex).search(text):
            raise InvalidValue("submission.pattern", "the value does not have the expected form")
    return text


def _long_text(field: Any, raw: Any, run: Coercion) -> str | None:
    return _read_text(field, raw, run, trim=False)


def _email(field: f.EmailField, raw: Any, run: Coercion) -> str | None:
    text = _read_text(field, raw, run, trim=True)
    if text is not None and not _EMAIL.fullmatch(text):
        raise InvalidValue("submission.invalid-email", "not an e-mail address")
    return text


def _phone(field: f.PhoneField, raw: Any, run: Coercion) -> str | None:
    text = _read_text(field, raw, run, trim=True)
    if text is not None and not _PHONE.fullmatch(text):
        raise InvalidValue("submission.invalid-phone", "not a phone number")
    return text


def _url(field: f.UrlField, raw: Any, run: Coercion) -> str | None:
    text = _read_text(field, raw, run, trim=True)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
    except ValueError as err:
        raise InvalidValue("submission.invalid-url", "not a URL") from err
    needs_host = parts.scheme != "mailto"
    if (
        parts.scheme not in field.schemes
        or (needs_host and not parts.hostname)
        or any(c.isspace() for c in text)
    ):
        allowed = ", ".join(field.schemes)
        raise InvalidValue("submission.invalid-url", f"not a URL with scheme {allowed}")
    return text


register(f.TextField, coerce=_text, to_json=same)
register(f.TextareaField, f.RichTextField, coerce=_long_text, to_json=same)
register(f.EmailField, coerce=_email, to_json=same)
register(f.PhoneField, coerce=_phone, to_json=same)
register(f.UrlField, coerce=_url, to_json=same)

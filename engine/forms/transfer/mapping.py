"""Column mapping: which file column feeds which field, decided before any data row is read.

Headers match a field by key or by label in any language, ignoring case and spaces; an explicit
mapping `{header: field key}` (or `{header: None}` to skip a column) wins. Every problem with the
columns is reported at once as a `SubmissionError` with paths `columns/<header>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import FieldError, SubmissionError

# Values the engine computes or assigns: exported, but never taken from a file.
COMPUTED_TYPES = frozenset({"formula", "autonumber", "lookup", "rollup"})
LAYOUT_TYPES = frozenset({"section", "divider", "description"})


@dataclass(frozen=True, slots=True)
class MappedColumn:
    index: int
    header: str
    field: Any


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """The columns an import reads, and those it skips (computed fields, blank headers)."""

    columns: tuple[MappedColumn, ...]
    skipped: tuple[str, ...]

    def is_key_row(self, cells: Sequence[Any]) -> bool:
        """Whether `cells` is the optional second header row of field keys that export writes."""
        return bool(self.columns) and all(
            isinstance(cells[c.index], str) and cells[c.index].strip() == c.field.key
            for c in self.columns
        )


def _fold(text: str) -> str:
    return "".join(str(text).split()).casefold()


def exportable_fields(form: Any) -> list[Any]:
    """The top-level fields that hold a value, in definition order, retired ones left out."""
    return [
        f
        for f in form.spec.fields
        if str(f.type) not in LAYOUT_TYPES and not getattr(f, "retired", False)
    ]


def _names(field: Any) -> Iterable[tuple[str, bool]]:
    """(folded name, is the key) for the key and every translation of the label."""
    yield _fold(field.key), True
    label = getattr(field, "label", None)
    if isinstance(label, dict):
        for text in label.values():
            yield _fold(text), False
    elif label:
        yield _fold(label), False


def _index(fields: Sequence[Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    by_key: dict[str, Any] = {}
    by_label: dict[str, list[Any]] = {}
    for field in fields:
        for name, is_key in _names(field):
            if is_key:
                by_key[name] = field
            elif field not in by_label.setdefault(name, []):
                by_label[name].append(field)
    return by_key, by_label


def map_columns(
    form: Any, headers: Sequence[str], *, mapping: Mapping[str, str | None] | None = None
) -> ColumnMapping:
    """Match `headers` to the fields of `form` (a CompiledForm).

    Raises:
        SubmissionError: with every unknown, ambiguous, duplicate or missing column.
    """
    fields = exportable_fields(form)
    by_key, by_label = _index(fields)
    explicit = dict(mapping or {})
    errors: list[FieldError] = []
    chosen: dict[int, tuple[str, Any]] = {}
    skipped: list[str] = []
    for header in explicit:
        if header not in headers:
            errors.append(_err(header, "transfer.unknown-column", "no column has this header"))
    for index, header in enumerate(headers):
        field = _resolve(header, explicit, by_key, by_label, errors)
        if field is None or str(field.type) in COMPUTED_TYPES:
            skipped.append(header)
        else:
            chosen[index] = (header, field)
    errors.extend(_duplicates(chosen))
    errors.extend(_missing(fields, chosen))
    if errors:
        raise SubmissionError(errors, f"{len(errors)} problem(s) with the columns")
    columns = tuple(MappedColumn(i, h, f) for i, (h, f) in sorted(chosen.items()))
    return ColumnMapping(columns=columns, skipped=tuple(skipped))


def _resolve(
    header: str,
    explicit: Mapping[str, str | None],
    by_key: Mapping[str, Any],
    by_label: Mapping[str, list[Any]],
    errors: list[FieldError],
) -> Any | None:
    if header in explicit:
        target = explicit[header]
        if not target:
            return None
        field = by_key.get(_fold(target))
        if field is None:
            message = f"the form has no field {target!r}"
            errors.append(_err(header, "transfer.unknown-field", message))
        return field
    name = _fold(header)
    if name in by_key:
        return by_key[name]
    candidates = by_label.get(name, [])
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        keys = ", ".join(f.key for f in candidates)
        errors.append(_err(header, "transfer.ambiguous-column", f"matches fields {keys}"))
    elif not header.startswith("#"):
        errors.append(_err(header, "transfer.unknown-column", "matches no field of the form"))
    return None


def _duplicates(chosen: Mapping[int, tuple[str, Any]]) -> list[FieldError]:
    seen: dict[str, str] = {}
    errors = []
    for header, field in chosen.values():
        if field.key in seen:
            message = f"column {seen[field.key]!r} already fills field {field.key!r}"
            errors.append(_err(header, "transfer.duplicate-column", message))
        else:
            seen[field.key] = header
    return errors


def _missing(fields: Sequence[Any], chosen: Mapping[int, tuple[str, Any]]) -> list[FieldError]:
    """Required fields without a column; a default or `required_if` leaves it to the rows."""
    mapped = {field.key for _header, field in chosen.values()}
    return [
        _err(field.key, "transfer.missing-column", "a required field has no column")
        for field in fields
        if getattr(field, "required", False)
        and not getattr(field, "read_only", False)
        and getattr(field, "default", None) is None
        and getattr(field, "default_expr", None) is None
        and str(field.type) not in COMPUTED_TYPES
        and field.key not in mapped
    ]


def _err(header: str, code: str, message: str) -> FieldError:
    return FieldError(loc=f"columns/{header}", code=code, message=message)


__all__ = ["COMPUTED_TYPES", "ColumnMapping", "MappedColumn", "exportable_fields", "map_columns"]

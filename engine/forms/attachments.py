"""File fields hold references to stored uploads: the server, not the client, says what they are.

Before validation, every file reference in submitted data is replaced by the stored file's own
metadata (name, size, type, hash), so size and type rules check the real upload and a client
cannot point a record at bytes it describes falsely. Unknown ids are errors at the field's path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import FieldError, SubmissionError
from engine.forms.compiler import CompiledForm
from engine.forms.fields import AttachmentField, ImageField, SignatureField
from engine.storage.files import FileRecord, find_files

FILE_FIELDS = (AttachmentField, ImageField, SignatureField)


def resolve_file_refs(
    *, conn: sa.Connection, form: CompiledForm, data: Mapping[str, Any]
) -> dict[str, Any]:
    """`data` with each file reference replaced by the stored file's reference.

    Raises:
        SubmissionError: `submission.unknown-file` for references to no stored file.
    """
    slots = list(_file_slots(form, data))
    if not slots:
        return dict(data)
    stored = find_files(conn, ids=[ref for _loc, _set, value in slots for ref in _ids(value)])
    out = {key: _copy(value) for key, value in data.items()}
    errors: list[FieldError] = []
    for loc, place, value in _file_slots(form, out):
        resolved = [_resolve(ref, stored, loc, errors) for ref in _listed(value)]
        place(resolved if isinstance(value, list) else (resolved[0] if resolved else None))
    if errors:
        raise SubmissionError(errors)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [dict(row) if isinstance(row, Mapping) else row for row in value]
    return value


def _file_slots(form: CompiledForm, data: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(loc, setter, value) for every file value in `data`, subform cells included."""
    for key, value in data.items():
        field = form.fields.get(key)
        if isinstance(field, FILE_FIELDS) and value is not None:
            yield key, _setter(data, key), value
        elif key in form.subform_fields and isinstance(value, list):
            children = form.subform_fields[key]
            for index, row in enumerate(value):
                if not isinstance(row, dict):
                    continue
                for child_key, cell in row.items():
                    if isinstance(children.get(child_key), FILE_FIELDS) and cell is not None:
                        yield f"{key}/{index}/{child_key}", _setter(row, child_key), cell


def _setter(container: Any, key: str) -> Any:
    def place(value: Any) -> None:
        if isinstance(container, dict):
            container[key] = value

    return place


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ids(value: Any) -> Iterator[str]:
    for ref in _listed(value):
        ref_id = ref.get("id") if isinstance(ref, Mapping) else ref
        if isinstance(ref_id, str):
            yield ref_id


def _resolve(
    ref: Any, stored: Mapping[str, FileRecord], loc: str, errors: list[FieldError]
) -> Any:
    ref_id = ref.get("id") if isinstance(ref, Mapping) else ref
    if isinstance(ref_id, str) and ref_id in stored:
        return stored[ref_id].ref()
    errors.append(FieldError(loc, "submission.unknown-file", "no uploaded file has this id"))
    return ref


__all__ = ["FILE_FIELDS", "resolve_file_refs"]

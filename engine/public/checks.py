"""A public link checked against its form: every field it names exists and may be used so.

Submitters type only plain input fields: relations, users, departments and files would let an
anonymous caller point at records or people it cannot see, so those come from prefills only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import FieldError, SubmissionError
from engine.forms.spec import FormSpec
from engine.public.errors import BAD_LOOKUP, NOT_FILLABLE, UNKNOWN_FIELD
from engine.public.spec import PublicLinkSpec

COMPUTED_TYPES = frozenset({"lookup", "rollup", "formula", "autonumber", "section", "divider"})
NOT_TYPED_TYPES = frozenset(
    {"relation", "user", "department", "image", "attachment", "signature", "subform"}
)
TOKEN_TYPES = frozenset({"text", "phone", "email", "url"})
UPLOAD_FIELD_TYPES = frozenset({"image", "attachment"})  # files a submitter may attach


def field_types(form: FormSpec) -> dict[str, str]:
    """Field key → type for the top-level fields of `form`."""
    return {str(spec.key): str(spec.type) for spec in form.fields}


def check_link(spec: PublicLinkSpec, *, form: FormSpec, forms: Mapping[str, FormSpec]) -> None:
    """Raise `SubmissionError` listing every problem of `spec` for `form` at once."""
    errors = list(_problems(spec, form, forms))
    if errors:
        raise SubmissionError(errors, "the public link does not fit the form")


def _problems(
    spec: PublicLinkSpec, form: FormSpec, forms: Mapping[str, FormSpec]
) -> Iterator[FieldError]:
    types = field_types(form)
    uploads = set(spec.uploads.fields) if spec.uploads else set()
    for i, key in enumerate(spec.fields):
        yield from _known(types, key, f"fields/{i}")
        if key in uploads and types.get(key) in UPLOAD_FIELD_TYPES:
            continue
        if types.get(key) in COMPUTED_TYPES | NOT_TYPED_TYPES:
            yield FieldError(f"fields/{i}", NOT_FILLABLE, f"{key!r} cannot be typed in publicly")
    for key, prefill in spec.prefill.items():
        yield from _known(types, key, f"prefill/{key}")
        if types.get(key) in COMPUTED_TYPES:
            yield FieldError(f"prefill/{key}", NOT_FILLABLE, f"{key!r} is computed")
        if prefill.readonly == (key in spec.fields):
            message = "a read-only prefill is not typed; an editable one must be in `fields`"
            yield FieldError(f"prefill/{key}", NOT_FILLABLE, message)
    for i, key in enumerate(spec.trackable):
        yield from _known(types, key, f"trackable/{i}")
    for i, key in enumerate(spec.uploads.fields if spec.uploads else ()):
        if types.get(key) not in UPLOAD_FIELD_TYPES or key not in spec.fields:
            message = f"{key!r} is not an image or attachment field of the link's `fields`"
            yield FieldError(f"uploads/fields/{i}", NOT_FILLABLE, message)
    if spec.lookup is not None:
        yield from _lookup_problems(spec, form, forms, types)


def _known(types: Mapping[str, str], key: str, loc: str) -> Iterator[FieldError]:
    if key not in types:
        yield FieldError(loc, UNKNOWN_FIELD, f"the form has no field {key!r}")


def _lookup_problems(
    spec: PublicLinkSpec, form: FormSpec, forms: Mapping[str, FormSpec], types: Mapping[str, str]
) -> Iterator[FieldError]:
    lookup = spec.lookup
    assert lookup is not None  # checked by the caller
    relation = _field(form, lookup.relation)
    if relation is None or str(relation.type) != "relation" or relation.multiple:
        yield FieldError("lookup/relation", BAD_LOOKUP, "name a single relation field")
        return
    target = forms.get(str(relation.form))
    if target is None:
        yield FieldError("lookup/relation", BAD_LOOKUP, "the relation's form is not in this app")
        return
    target_types = field_types(target)
    if target_types.get(lookup.by) not in TOKEN_TYPES:
        yield FieldError(
            "lookup/by", BAD_LOOKUP, f"{lookup.by!r} is not a text field of the target"
        )
    taken = set(spec.fields) | set(spec.prefill) | {lookup.relation}
    for key, source in lookup.copy_fields.items():
        loc = f"lookup/copy/{key}"
        yield from _known(types, key, loc)
        if types.get(key) in COMPUTED_TYPES or key in taken:
            yield FieldError(loc, NOT_FILLABLE, f"{key!r} is computed or filled elsewhere")
        if source not in target_types:
            yield FieldError(loc, UNKNOWN_FIELD, f"the target form has no field {source!r}")
    if lookup.relation in spec.fields or lookup.relation in spec.prefill:
        yield FieldError("lookup/relation", BAD_LOOKUP, "the lookup fills the relation itself")


def _field(form: FormSpec, key: str) -> Any:
    return next((spec for spec in form.fields if str(spec.key) == key), None)


__all__ = [
    "COMPUTED_TYPES",
    "NOT_TYPED_TYPES",
    "TOKEN_TYPES",
    "UPLOAD_FIELD_TYPES",
    "check_link",
    "field_types",
]

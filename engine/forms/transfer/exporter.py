"""Export layout: a form's records (API values) as header rows and cell rows for a writer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine.forms.transfer.cells import CellContext, Options, encode_cell
from engine.forms.transfer.mapping import exportable_fields
from engine.labels import label_text


def header_rows(fields: list[Any], *, lang: str, key_row: bool) -> list[list[str]]:
    """The label row in `lang` and, when asked, a second row of field keys."""
    labels = [label_text(f.label, lang) if f.label else f.key for f in fields]
    return [labels, [f.key for f in fields]] if key_row else [labels]


def export_rows(
    form: Any,
    records: Iterable[Mapping[str, Any]],
    *,
    options: Mapping[str, Options],
    lang: str = "en",
    key_row: bool = False,
    for_xlsx: bool = False,
) -> Iterator[list[Any]]:
    """Header row(s), then one row of cells per record (a mapping of field key → API value)."""
    fields = exportable_fields(form)
    yield from header_rows(fields, lang=lang, key_row=key_row)
    contexts = [
        CellContext(lang=lang, options=options.get(f.key), for_xlsx=for_xlsx) for f in fields
    ]
    for record in records:
        yield [
            encode_cell(field, record.get(field.key), ctx)
            for field, ctx in zip(fields, contexts, strict=True)
        ]


def field_options(form: Any, option_sets: Mapping[str, Any]) -> dict[str, Options]:
    """Option lookups for every choice field (and formula shown with an option set) of `form`."""
    local = {s.key: s for s in getattr(form.spec, "option_sets", ())}
    resolved = getattr(form, "options", {})
    out: dict[str, Options] = {}
    for field in exportable_fields(form):
        options = tuple(resolved.get(field.key, {}).values()) or getattr(field, "options", ())
        set_key = getattr(field, "option_set", None)
        if not options and set_key is not None:
            option_set = local.get(set_key) or option_sets.get(set_key)
            options = getattr(option_set, "options", ())
        if options:
            out[field.key] = Options.build(options)
    return out


__all__ = ["export_rows", "field_options", "header_rows"]

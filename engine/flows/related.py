"""Values at `relation.field[.field…]` paths (`customer.tier`, `contract.sla_policy.code`) for
flow expressions and SLA conditions: one query per form reached, only for the paths asked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.forms.record_writer import FormKit
from engine.registry import FormDefinition
from engine.storage.form_records import FormRecordStore
from engine.storage.uow import UnitOfWork

# form key → its definition and a record store on the caller's connection
Opener = Callable[[str], tuple[FormDefinition, FormRecordStore]]


def load_related(
    uow: UnitOfWork,
    kit: FormKit,
    *,
    app: str,
    form: str,
    values: Mapping[str, Any],
    paths: Iterable[str],
) -> dict[str, Any]:
    """`{path: value}` for each dotted path from a record of `form` whose own values are
    `values`; a blank relation, a missing target or a path through a non-relation gives None."""
    return related_paths(lambda key: kit.open(uow, app, key), form, values, paths)


def related_paths(
    opener: Opener, form: str, values: Mapping[str, Any], paths: Iterable[str]
) -> dict[str, Any]:
    """`load_related` over any way of opening the app's forms."""
    wanted = [p for p in paths if "." in p]
    if not wanted:
        return {}
    definition, store = opener(form)
    here = {".".join(p.split(".")[:2]) for p in wanted}
    ids = {
        name.split(".")[0]: raw
        for name in here
        if isinstance(raw := values.get(name.split(".")[0]), int) and not isinstance(raw, bool)
    }
    found = store.related_values(names=here, ids=ids) if ids else {}
    out: dict[str, Any] = {p: found.get(p) for p in wanted if p.count(".") == 1}
    deeper: dict[str, list[str]] = defaultdict(list)
    for path in wanted:
        if path.count(".") > 1:
            first, rest = path.split(".", 1)
            deeper[first].append(rest)
    for first, rests in deeper.items():
        target = getattr(definition.compiled.fields.get(first), "form", None)
        if not isinstance(target, str) or "." in target or first not in ids:
            out.update({f"{first}.{r}": None for r in rests})
            continue
        hop = {r.split(".")[0]: found.get(f"{first}.{r.split('.')[0]}") for r in rests}
        inner = related_paths(opener, target, hop, rests)
        out.update({f"{first}.{r}": inner.get(r) for r in rests})
    return out


__all__ = ["Opener", "load_related", "related_paths"]

"""Values at dotted paths through relations (`customer.tier`, `contract.sla_policy.code`), read
with one query per form reached: the SLA conditions and notify lists use them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from engine.forms.service import RecordService
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.form_records import FormRecordStore
from engine.storage.uow import UnitOfWork


def related_values(
    uow: UnitOfWork,
    *,
    registry: DefinitionRegistry,
    records: RecordService,
    app: str,
    form: str,
    values: Mapping[str, Any],
    paths: Iterable[str],
    definition: FormDefinition | None = None,
) -> dict[str, Any]:
    """`{path: value}` for each `relation.field[.field…]` path from a record of `form` whose
    own values are `values` (`definition`: that form's, when the caller has it in hand); a blank
    relation or a missing target gives None."""
    wanted = [p for p in paths if "." in p]
    if not wanted:
        return {}
    if definition is None or (definition.app, definition.key) != (app, form):
        definition = registry.form(uow, app=app, key=form)
    store = FormRecordStore(uow.conn, layout=records.layout(definition), clock=uow.clock)
    # one hop here: `relation.field`; deeper paths also need the next relation's id
    here = {".".join(p.split(".")[:2]) for p in wanted}
    ids = {
        name.split(".")[0]: raw
        for name in here
        if isinstance(raw := values.get(name.split(".")[0]), int) and not isinstance(raw, bool)
    }
    found = store.related_values(names=here, ids=ids) if ids else {}
    out = {p: found.get(p) for p in wanted if p.count(".") == 1}
    deeper: dict[str, list[str]] = defaultdict(list)
    for path in wanted:
        if path.count(".") > 1:
            first, rest = path.split(".", 1)
            deeper[first].append(rest)
    for first, rests in deeper.items():
        target = getattr(definition.compiled.fields.get(first), "form", None)
        next_ids = {r.split(".")[0]: found.get(f"{first}.{r.split('.')[0]}") for r in rests}
        if not isinstance(target, str) or "." in target or first not in ids:
            out.update({f"{first}.{r}": None for r in rests})
            continue
        inner = related_values(
            uow, registry=registry, records=records, app=app, form=target,
            values=next_ids, paths=rests,
        )  # fmt: skip
        out.update({f"{first}.{r}": inner.get(r) for r in rests})
    return out


__all__ = ["related_values"]

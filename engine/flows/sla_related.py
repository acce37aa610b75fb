"""Values at dotted paths through relations (`customer.tier`, `contract.sla_policy.code`) for
the SLA conditions and notify lists, through the SLA service's registry and record layouts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.flows.related import related_paths
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

    def opener(key: str) -> tuple[FormDefinition, FormRecordStore]:
        found = definition
        if found is None or (found.app, found.key) != (app, key):
            found = registry.form(uow, app=app, key=key)
        return found, FormRecordStore(uow.conn, layout=records.layout(found), clock=uow.clock)

    return related_paths(opener, form, values, paths)


__all__ = ["related_values"]

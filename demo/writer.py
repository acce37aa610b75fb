"""Batch writes of generated records through the form engine's own pieces: each record is
validated by `validate_submission` (defaults, formulas and rules as on the API), stored with
`FormRecordStore.insert_many`, and its system timestamps are set to when it happened.

No change listeners run (no flows, no SLA jobs): the generator computes what they would have
written itself, with the same pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import SubmissionError
from engine.forms.validation import EvalContext, validate_submission
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage._record_layout import RecordLayout
from engine.storage.form_records import FormRecordStore, build_record_layout
from engine.storage.uow import UnitOfWork

BATCH = 2_000
_LAYOUTS: dict[tuple[str, str, str, str], RecordLayout] = {}
AT = "_at"  # a generated record's key for its creation instant (not a field)
RELATED = "_related"  # values at relation paths its expressions read (`device.product_model`)


class FormWriter:
    """Writes the records of every form of one installed app in a unit of work."""

    def __init__(self, uow: UnitOfWork, *, app: str, now: datetime) -> None:
        self.uow, self.app, self.now = uow, app, now
        self._registry = DefinitionRegistry()
        self._definitions: dict[str, FormDefinition] = {}

    def definition(self, form: str) -> FormDefinition:
        found = self._definitions.get(form)
        if found is None:
            found = self._registry.form(self.uow, app=self.app, key=form)
            self._definitions[form] = found
        return found

    def layout(self, form: str) -> RecordLayout:
        # building a layout costs as much as a thousand small inserts: one per definition
        # version, kept across runs like the form service's own cache
        definition = self.definition(form)
        key = (definition.app, definition.key, definition.digest, definition.fingerprint)
        found = _LAYOUTS.get(key)
        if found is None:
            found = build_record_layout(
                app=self.app, form=definition.compiled, forms=definition.forms
            )
            if len(_LAYOUTS) > 256:
                _LAYOUTS.clear()
            _LAYOUTS[key] = found
        return found

    def table(self, form: str) -> sa.Table:
        return self.layout(form).main

    def clean(self, form: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The record as the API would store it (raises `SubmissionError` like the API)."""
        context = EvalContext(now=values.get(AT) or self.now, timezone="Asia/Shanghai")
        data = {k: v for k, v in values.items() if k not in (AT, RELATED)}
        try:
            return validate_submission(
                self.definition(form).compiled,
                data,
                current=None,
                context=context,
                related=values.get(RELATED),
            )
        except SubmissionError as err:  # a generator bug: say which record and why
            problems = "; ".join(f"{e.loc}: {e.code} {e.message}" for e in err.errors)
            raise SubmissionError(err.errors, f"demo {form} record: {problems}") from err

    def insert(
        self, form: str, records: Sequence[Mapping[str, Any]], *, validate: bool = True
    ) -> list[int]:
        """Validate and store `records` in order; their ids. A record's `_at` (aware) becomes its
        created_at/updated_at, and autonumbers take the period of its month. `validate=False`
        is for plain rows (no formulas, defaults or rules to apply) that come in the tens of
        thousands: they are stored as given."""
        layout = self.layout(form)
        ids: list[int] = []
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            clean = [
                self.clean(form, r)
                if validate
                else {k: v for k, v in r.items() if k not in (AT, RELATED)}
                for r in chunk
            ]
            ids += self._insert_chunk(layout, clean, [r.get(AT) or self.now for r in chunk])
        return ids

    def _insert_chunk(
        self, layout: RecordLayout, clean: list[dict[str, Any]], stamps: list[datetime]
    ) -> list[int]:
        # one autonumber period per statement: split where the month changes
        ids: list[int] = []
        begin = 0
        for end in range(1, len(clean) + 1):
            if end == len(clean) or _month(stamps[end]) != _month(stamps[begin]):
                store = FormRecordStore(self.uow.conn, layout=layout, clock=_fixed(stamps[begin]))
                ids += store.insert_many(records=clean[begin:end], actor=None)
                begin = end
        main = layout.main
        update = (
            main.update()
            .where(main.c.id == sa.bindparam("_id"))
            .values(created_at=sa.bindparam("_c"), updated_at=sa.bindparam("_c"))
        )
        self.uow.conn.execute(
            update, [{"_id": i, "_c": t} for i, t in zip(ids, stamps, strict=True)]
        )
        return ids

    def update(self, form: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Set stored columns of existing records: each row holds `id` and the columns to set
        (a blank value is left out of its row, so columns stay NULL); a statement per key set."""
        main = self.table(form)
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            keys = tuple(k for k, v in row.items() if k != "id" and v not in (None, []))
            groups.setdefault(keys, []).append(row)
        for keys, group in groups.items():
            if not keys:
                continue
            statement = (
                main.update()
                .where(main.c.id == sa.bindparam("_id"))
                .values({k: sa.bindparam(f"_{k}") for k in keys})
            )
            params = [{"_id": r["id"], **{f"_{k}": r[k] for k in keys}} for r in group]
            self.uow.conn.execute(statement, params)


def _fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def _month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m")


__all__ = ["AT", "RELATED", "FormWriter"]

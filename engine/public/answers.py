"""The anonymous side of answer links (`/a/{token}`): show the offered fields, take one answer.

The answer is written to the record like any write (validated, record events fired, so flows
waiting on the record move on), together with the action's `on_answer` values, and the link
is closed in the same transaction: a second answer, even a concurrent one, gets 409
`public.answer-used`. Expired and replaced links get their own codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ConflictError, FieldError, NotFoundError, SubmissionError
from engine.expr import evaluate, parse
from engine.forms.events import ChangeListener
from engine.forms.service import RecordService, field_json
from engine.public import rate
from engine.public._store import LinkStore, PublicLink
from engine.public.answer_links import ANSWER_KIND
from engine.public.errors import FIELD_NOT_ALLOWED
from engine.public.service import token_hash
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.form_records import FormRecordStore
from engine.storage.sqltypes import utc_now
from engine.storage.tables_public import public_links
from engine.storage.uow import UnitOfWork

ANSWER_NOT_FOUND = "public.answer-not-found"
ANSWER_USED = "public.answer-used"
ANSWER_EXPIRED = "public.answer-expired"
ANSWER_REPLACED = "public.answer-replaced"
ANSWER_REQUIRED = "public.answer-required"
ANSWERS_PER_CLIENT = 60  # answer page views and posts per client address per minute


@dataclass(frozen=True, slots=True)
class AnswerForm:
    """What an answer link offers: the fields (in order), their current values, the expiry."""

    link: PublicLink
    definition: FormDefinition
    fields: list[str]
    required: list[str]
    values: dict[str, Any]


class AnswerService:
    """Answer-link use cases over one database (the app owns it beside the record service)."""

    def __init__(
        self,
        *,
        db: sa.Engine,
        registry: DefinitionRegistry,
        listeners: Sequence[ChangeListener] = (),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._registry = registry
        self._clock = clock
        self._records = RecordService(db=db, registry=registry, clock=clock, listeners=listeners)

    def open(self, *, token: str, client: str) -> AnswerForm:
        with UnitOfWork(self._db, clock=self._clock) as uow:
            self._count(uow, client)
            link = self._usable(uow, token)
            definition = self._registry.form(uow, app=link.app, key=link.form)
            record = self._record(uow, definition, link)
            fields = [str(k) for k in link.options["fields"]]
            values = {k: field_json(definition, k, record.get(k)) for k in fields}
            required = [str(k) for k in link.options.get("required", [])]
            return AnswerForm(link, definition, fields, required, values)

    def answer(self, *, token: str, data: Mapping[str, Any], client: str) -> None:
        """Write the answer and close the link, in one transaction."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            self._count(uow, client)
            link = self._usable(uow, token)
            now = self._clock()
            closed = uow.conn.execute(
                sa.update(public_links)
                .where(public_links.c.id == link.id, public_links.c.enabled.is_(True))
                .values(enabled=False, options={**link.options, "answered_at": now.isoformat()})
            )
            if closed.rowcount != 1:  # a concurrent answer won
                raise ConflictError("this link has already been answered", code=ANSWER_USED)
            fields = [str(k) for k in link.options["fields"]]
            required = [str(k) for k in link.options.get("required", [])]
            errors = [
                FieldError(k, FIELD_NOT_ALLOWED, "not asked") for k in data if k not in fields
            ]
            errors += [
                FieldError(k, ANSWER_REQUIRED, "please answer this")
                for k in required
                if data.get(k) in (None, "", [])
            ]
            if errors:
                raise SubmissionError(errors)
            definition = self._registry.form(uow, app=link.app, key=link.form)
            current = self._record(uow, definition, link)
            values = {k: v for k, v in data.items() if v not in ("",)}
            seen = {**current, **values}
            for key, text in dict(link.options.get("on_answer", {})).items():
                values[key] = evaluate(parse(str(text)), seen, now=now)
            writer = self._records.writer(uow, source="api", depth=0)
            writer.update(link.app, link.form, int(link.options["record_id"]), values, actor=None)
            uow.commit()

    # --- helpers ----------------------------------------------------------------------------

    def _count(self, uow: UnitOfWork, client: str) -> None:
        try:
            rate.hit(
                uow.conn,
                bucket=f"answer:{client}",
                limit=ANSWERS_PER_CLIENT,
                window_seconds=60,
                now=self._clock(),
            )
        finally:
            uow.commit()

    def _usable(self, uow: UnitOfWork, token: str) -> PublicLink:
        link = LinkStore(uow.conn, now=self._clock()).find(token=token_hash(token[:200]))
        if link is None or link.options.get("kind") != ANSWER_KIND:
            raise NotFoundError("no such answer link", code=ANSWER_NOT_FOUND)
        if link.options.get("answered_at"):
            raise ConflictError("this link has already been answered", code=ANSWER_USED)
        if not link.enabled:
            message = "a newer link was sent for this; please use that one"
            raise ConflictError(message, code=ANSWER_REPLACED)
        if link.expires_at is not None and self._clock() >= link.expires_at:
            raise ConflictError("this link has expired", code=ANSWER_EXPIRED)
        return link

    def _record(
        self, uow: UnitOfWork, definition: FormDefinition, link: PublicLink
    ) -> dict[str, Any]:
        layout = self._records.layout(definition)
        store = FormRecordStore(uow.conn, layout=layout, clock=self._clock)
        try:
            return dict(store.get(record_id=int(link.options["record_id"])).values)
        except NotFoundError as err:
            raise NotFoundError("no such answer link", code=ANSWER_NOT_FOUND) from err


__all__ = [
    "ANSWER_EXPIRED",
    "ANSWER_NOT_FOUND",
    "ANSWER_REPLACED",
    "ANSWER_REQUIRED",
    "ANSWER_USED",
    "AnswerForm",
    "AnswerService",
]

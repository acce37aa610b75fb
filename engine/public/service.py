"""Public links: publish a form, open it anonymously, submit once, follow the request.

The submitter has no account: what it may send is exactly the link's `fields`, what it sees
back is the one record it created, through a random tracking token (stored hashed), and only
the fields the link marks trackable. Rate limits live in the database (`engine.public.rate`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from engine.errors import FieldError, NotFoundError, SubmissionError
from engine.forms.events import ChangeListener
from engine.forms.service import RecordService, field_json
from engine.public import rate
from engine.public._store import LinkStore, PublicLink, TrackingStore
from engine.public.checks import check_link
from engine.public.errors import (
    FIELD_NOT_ALLOWED,
    LINK_CLOSED,
    LINK_NOT_FOUND,
    LOOKUP_NOT_FOUND,
    TRACKING_NOT_FOUND,
)
from engine.public.spec import LimitsSpec, PublicLinkSpec, link_spec
from engine.public.uploads import attach_uploads, claim_uploads, store_upload
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.files import FileRecord
from engine.storage.form_records import FormRecordStore
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

TRACK_PER_CLIENT = 120  # tracking lookups per client address per minute
TRACKING_PATH = "/t/"


@dataclass(frozen=True, slots=True)
class Prefilled:
    """The values a link fills in: `values` by field key, `readonly` those the submitter
    cannot change, `display` a text per relation value (the related record's title)."""

    values: dict[str, Any]
    readonly: frozenset[str]
    display: dict[str, str]


@dataclass(frozen=True, slots=True)
class Submitted:
    record_id: int
    tracking_token: str

    @property
    def tracking_path(self) -> str:
        return TRACKING_PATH + self.tracking_token


@dataclass(frozen=True, slots=True)
class Tracked:
    """What a tracking token shows: the trackable fields of its record, in the link's order."""

    link: PublicLink
    definition: FormDefinition
    submitted_at: datetime
    values: dict[str, Any]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PublicLinkService:
    """Public link use cases over one database; the app owns it beside the record service."""

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
        self._listeners = listeners
        self._clock = clock
        self._records = RecordService(db=db, registry=registry, clock=clock, listeners=listeners)

    # --- administration ---------------------------------------------------------------------

    def create_link(
        self, *, app: str, form: str, spec: PublicLinkSpec, actor_id: int | None
    ) -> PublicLink:
        """Check `spec` against the form and store it under a new random token."""
        definition = self._records.definition(app=app, form=form)
        check_link(spec, form=definition.compiled.spec, forms=definition.forms)
        with UnitOfWork(self._db, clock=self._clock) as uow:
            link = LinkStore(uow.conn, now=self._clock()).insert(
                token=secrets.token_urlsafe(18),
                app=app,
                form=form,
                values=_state(spec) | {"options": spec.options(), "created_by": actor_id},
            )
            _audit(uow, "public.link-create", link, actor_id)
            uow.commit()
        return link

    def list_links(self, *, app: str, form: str) -> list[PublicLink]:
        self._records.definition(app=app, form=form)  # 404 for an unknown form
        with UnitOfWork(self._db, clock=self._clock) as uow:
            return LinkStore(uow.conn, now=self._clock()).list_for(app=app, form=form)

    def change_link(
        self,
        *,
        app: str,
        form: str,
        link_id: int,
        changes: Mapping[str, Any],
        actor_id: int | None,
    ) -> PublicLink:
        """Enable, disable or re-date a link (`enabled`, `expires_at`)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            store = LinkStore(uow.conn, now=self._clock())
            link = store.get(link_id=link_id)
            if (link.app, link.form) != (app, form):
                raise NotFoundError(f"public link {link_id} not found", code=LINK_NOT_FOUND)
            allowed = {k: v for k, v in changes.items() if k in ("enabled", "expires_at")}
            link = store.update(link_id=link_id, values=allowed)
            _audit(uow, "public.link-change", link, actor_id, detail=allowed)
            uow.commit()
        return link

    # --- the anonymous side -----------------------------------------------------------------

    def open_link(self, *, token: str) -> tuple[PublicLink, FormDefinition]:
        """The open link of `token` and its form; 404 when unknown, disabled or expired."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            link = self._open(uow, token)
            return link, self._registry.form(uow, app=link.app, key=link.form)

    def body_limit(self, *, token: str) -> int:
        """The most bytes a submission to the open link of `token` may have."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            link = self._open(uow, token)
        return link_spec(link.options).limits.max_body_bytes

    def prefill(self, link: PublicLink, params: Mapping[str, str]) -> Prefilled:
        """The values `link` fills from its fixed values, the query and its lookup."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            return self._prefill(uow, link, link_spec(link.options), params)

    def submit(
        self, *, token: str, params: Mapping[str, str], data: Mapping[str, Any], client: str
    ) -> Submitted:
        """Rate-limit, check and store one submission; its record and tracking token commit
        together. Only the link's typed fields are accepted; read-only prefills win."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            link = self._open(uow, token)
            spec = link_spec(link.options)
            self._count(uow, link, spec.limits, client)
            refused = sorted(set(data) - set(spec.fields))
            if refused:
                message = "this link does not accept the field"
                errors = [FieldError(key, FIELD_NOT_ALLOWED, message) for key in refused]
                raise SubmissionError(errors)
            filled = self._prefill(uow, link, spec, params)
            claimed = claim_uploads(uow, link=link, spec=spec, data=data)
            values = {k: v for k, v in data.items() if k not in filled.readonly}
            values = {**filled.values, **values, **claimed}
            values |= {k: filled.values[k] for k in filled.readonly if k in filled.values}
            writer = self._records.writer(uow, source="api", depth=0)
            record = writer.create(link.app, link.form, values, actor=None)
            attach_uploads(uow, claimed=claimed, record_id=record.id)
            tracking = secrets.token_urlsafe(24)  # 192 bits
            TrackingStore(uow.conn, now=self._clock()).insert(
                token_hash=token_hash(tracking), link_id=link.id, record_id=record.id
            )
            uow.commit()
        return Submitted(record.id, tracking)

    def upload(
        self, *, token: str, stream: BinaryIO, name: str, client: str, root: Path, max_bytes: int
    ) -> FileRecord:
        """Store one file a submitter attaches through the open link of `token`
        (engine.public.uploads: type from the bytes, size and per-client limits)."""
        with UnitOfWork(self._db, clock=self._clock) as uow:
            link = self._open(uow, token)
            record = store_upload(
                uow,
                link=link,
                spec=link_spec(link.options),
                stream=stream,
                name=name,
                client=client,
                root=root,
                max_bytes=max_bytes,
            )
            uow.commit()
        return record

    def track(self, *, token: str, client: str) -> Tracked:
        """The trackable fields of the record `token` was issued for; 404 for anything else."""
        gone = NotFoundError("no such tracking link", code=TRACKING_NOT_FOUND)
        with UnitOfWork(self._db, clock=self._clock) as uow:
            now = self._clock()
            rate.hit(
                uow.conn,
                bucket=f"track:{client}",
                limit=TRACK_PER_CLIENT,
                window_seconds=60,
                now=now,
            )
            uow.commit()
            row = TrackingStore(uow.conn, now=now).find(token_hash=token_hash(token))
            if row is None or ":" in token:  # "upload:…" names a pending upload, not a request
                raise gone
            link = LinkStore(uow.conn, now=now).get(link_id=row.link_id)
            definition = self._registry.form(uow, app=link.app, key=link.form)
            try:
                record = self._store(uow, definition).get(record_id=row.record_id)
            except NotFoundError as err:  # deleted since: the request is gone for the submitter
                raise gone from err
        trackable = link_spec(link.options).trackable
        values = {key: field_json(definition, key, record.values.get(key)) for key in trackable}
        return Tracked(link, definition, record.created_at, values)

    # --- helpers ----------------------------------------------------------------------------

    def _open(self, uow: UnitOfWork, token: str) -> PublicLink:
        link = LinkStore(uow.conn, now=self._clock()).find(token=token[:64])
        if link is None or link.options.get("kind") == "answer":  # answer links are /a/…
            raise NotFoundError("no such public link", code=LINK_NOT_FOUND)
        if not link.is_open(self._clock()):
            raise NotFoundError("this public link is closed", code=LINK_CLOSED)
        return link

    def _store(self, uow: UnitOfWork, definition: FormDefinition) -> FormRecordStore:
        return FormRecordStore(uow.conn, layout=self._records.layout(definition), clock=self._clock)

    def _count(self, uow: UnitOfWork, link: PublicLink, limits: LimitsSpec, client: str) -> None:
        now = self._clock()
        try:
            for bucket, limit in (
                (f"submit:{link.id}:{client}", limits.per_client),
                (f"link:{link.id}", limits.per_link),
            ):
                rate.hit(
                    uow.conn,
                    bucket=bucket,
                    limit=limit,
                    window_seconds=limits.window_seconds,
                    now=now,
                )
        finally:
            uow.commit()  # refused hits count too

    def _prefill(
        self, uow: UnitOfWork, link: PublicLink, spec: PublicLinkSpec, params: Mapping[str, str]
    ) -> Prefilled:
        values: dict[str, Any] = {}
        for key, prefill in spec.prefill.items():
            value = prefill.value if prefill.param is None else params.get(prefill.param)
            if value not in (None, ""):
                values[key] = value
        readonly = {k for k, p in spec.prefill.items() if p.readonly}
        display: dict[str, str] = {}
        if spec.lookup is not None and params.get(spec.lookup.param):
            found, title = self._lookup(uow, link, spec, params[spec.lookup.param])
            values |= found
            readonly |= set(found)
            display[spec.lookup.relation] = title
        return Prefilled(values, frozenset(readonly), display)

    def _lookup(
        self, uow: UnitOfWork, link: PublicLink, spec: PublicLinkSpec, value: str
    ) -> tuple[dict[str, Any], str]:
        lookup = spec.lookup
        assert lookup is not None  # the caller checked
        definition = self._registry.form(uow, app=link.app, key=link.form)
        target_key = str(definition.compiled.fields[lookup.relation].form)  # type: ignore[union-attr]
        target = self._registry.form(uow, app=link.app, key=target_key)
        store = self._store(uow, target)
        slot = store.layout.slot(lookup.by)
        assert slot is not None and slot.columns  # check_link accepted only stored text fields
        main = store.layout.main
        found = uow.conn.execute(
            sa.select(main.c.id)
            .where(main.c[slot.columns[0]] == value[:500], main.c.deleted_at.is_(None))
            .limit(1)
        ).scalar()
        if found is None:
            raise NotFoundError("nothing matches this code", code=LOOKUP_NOT_FOUND)
        record = store.get(record_id=int(found))
        values: dict[str, Any] = {lookup.relation: int(found)}
        for key, source in lookup.copy_fields.items():
            values[key] = field_json(target, source, record.values.get(source))
        title_key = target.compiled.spec.title_field
        title = record.values.get(title_key) if title_key else None
        return values, str(title) if title not in (None, "") else f"#{found}"


def _state(spec: PublicLinkSpec) -> dict[str, Any]:
    return {"label": spec.label, "enabled": spec.enabled, "expires_at": spec.expires_at}


def _audit(
    uow: UnitOfWork,
    action: str,
    link: PublicLink,
    actor_id: int | None,
    *,
    detail: Mapping[str, Any] | None = None,
) -> None:
    uow.audit.record(
        action=action,
        target_kind="public_link",
        target_key=f"{link.app}.{link.form}#{link.id}",
        actor=actor_id,
        detail={
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in (detail or {}).items()
        },
    )


__all__ = ["TRACKING_PATH", "Prefilled", "PublicLinkService", "Submitted", "Tracked", "token_hash"]

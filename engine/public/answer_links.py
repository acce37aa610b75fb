"""The `answer_link` flow action: a one-time link for someone without an account to fill chosen
fields of the flow's record (a survey answer, a confirmation) before it expires.

A link is a `public_links` row of kind "answer" whose token column holds the sha256 of the
secret token (the token itself is only in the message sent), labelled
`answer:{purpose}:{record id}` so that issuing again for the same record and purpose (a
reminder) replaces the live link and keeps its expiry. The anonymous side is
`engine.public.answers`; the e-mail job is `engine.public.answer_mail`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.errors import TransitionError
from engine.flows.runtime import duration, is_true
from engine.flows.spec import AnswerLink
from engine.labels import label_text
from engine.public._store import LinkStore, PublicLink
from engine.public.service import token_hash
from engine.storage.tables_public import public_links

if TYPE_CHECKING:
    from engine.flows.actions import ActionContext
    from engine.flows.checks import _Run

ANSWER_KIND = "answer"
ANSWER_PATH = "/a/"
ANSWER_EMAIL_JOB = "public.answer_email"
NO_RECORD = "flow.no-record"


def answer_label(purpose: str, record_id: int) -> str:
    return f"answer:{purpose}:{record_id}"


def check_answer_link(run: _Run, action: object, path: str) -> None:
    """Static checks of an `answer_link` action: its fields exist, its expressions type-check."""
    if not isinstance(action, AnswerLink):
        return
    catalog = run.ctx.catalog
    for name in ("fields", "required"):
        for i, key in enumerate(getattr(action, name)):
            if catalog is not None and key not in catalog:
                run.report("flow.unknown-field", f"{path}/{name}/{i}", f"no field {key!r}")
    for key in action.required:
        if key not in action.fields:
            message = f"{key!r} is required but not among the link's fields"
            run.report("flow.unknown-field", f"{path}/required", message)
    from engine.expr import ExprType

    for key, text in action.show_if.items():
        run.expr(text, f"{path}/show_if/{key}", ExprType.BOOLEAN)
    for key, text in action.on_answer.items():
        if catalog is not None and key not in catalog:
            run.report("flow.unknown-field", f"{path}/on_answer/{key}", f"no field {key!r}")
        run.expr(text, f"{path}/on_answer/{key}", None)
    run.expr(action.send_to, f"{path}/send_to", None)


def run_answer_link(ctx: ActionContext, action: Any, path: str) -> dict[str, Any]:
    """Issue the link for the flow's record (replacing a live one of the same purpose, whose
    expiry it keeps) and queue the e-mail when `send_to` gives an address."""
    assert isinstance(action, AnswerLink)
    instance = ctx.instance
    if instance.form is None or instance.record_id is None or ctx.record is None:
        raise TransitionError("answer_link needs the flow's record", code=NO_RECORD)
    offered = [
        key
        for key in action.fields
        if key not in action.show_if or is_true(ctx.eval(f"{path}/show_if/{key}"))
    ]
    label = answer_label(action.purpose, instance.record_id)
    store = LinkStore(ctx.uow.conn, now=ctx.now)
    live = _live(ctx.uow.conn, app=instance.app, form=instance.form, label=label, now=ctx.now)
    expires = live.expires_at if live is not None else ctx.now + duration(action.valid_for)
    if live is not None:
        store.update(link_id=live.id, values={"enabled": False})
    token = secrets.token_urlsafe(24)  # 192 bits; only its hash is stored
    options = {
        "kind": ANSWER_KIND,
        "record_id": instance.record_id,
        "purpose": action.purpose,
        "fields": offered,
        "required": [key for key in action.required if key in offered],
        "on_answer": dict(action.on_answer),
        "instance": instance.id,
    }
    row = store.insert(
        token=token_hash(token),
        app=instance.app,
        form=instance.form,
        values={"label": label, "options": options, "enabled": True, "expires_at": expires},
    )
    address = ctx.eval(f"{path}/send_to") if action.send_to else None
    if isinstance(address, str) and "@" in address:
        _queue_email(ctx, action, row, token, address.strip())
    return {
        "type": "answer_link",
        "fields": offered,
        "expires_at": expires.isoformat() if expires else None,
        "sent": isinstance(address, str) and "@" in address,
        "replaced": live is not None,
    }


def _live(conn: sa.Connection, *, app: str, form: str, label: str, now: Any) -> PublicLink | None:
    row = conn.execute(
        sa.select(public_links)
        .where(
            public_links.c.app == app,
            public_links.c.form == form,
            public_links.c.label == label,
            public_links.c.enabled.is_(True),
        )
        .order_by(public_links.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    link = PublicLink(**row._mapping)
    return link if link.is_open(now) else None


def _queue_email(
    ctx: ActionContext, action: AnswerLink, row: PublicLink, token: str, address: str
) -> None:
    from engine.jobs.queue import enqueue

    link = ANSWER_PATH + token
    values = {**ctx.values, "link": link}
    subject = fill(label_text(action.subject) if action.subject else "", values)
    body = fill(label_text(action.body) if action.body else "{link}", values)
    enqueue(
        ctx.uow.conn,
        kind=ANSWER_EMAIL_JOB,
        payload={"to": address, "subject": subject or "Your answer", "body": body, "link": link},
        due_at=ctx.now,
        key=f"{ANSWER_EMAIL_JOB}:{row.id}",
    )


def fill(template: str, values: Mapping[str, Any]) -> str:
    """`{name}` placeholders replaced by the values (unknown ones left as written)."""
    from engine.flows.actions import jsonable

    out = template
    for key, value in values.items():
        marker = "{" + key + "}"
        if not key.startswith("$") and marker in out:
            out = out.replace(marker, "" if value is None else str(jsonable(value)))
    return out


__all__ = [
    "ANSWER_EMAIL_JOB",
    "ANSWER_KIND",
    "ANSWER_PATH",
    "answer_label",
    "check_answer_link",
    "fill",
    "run_answer_link",
]

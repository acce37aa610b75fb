"""The `report.delivery_mail` job: one recipient's copy of a scheduled delivery, run as that
recipient at the run's time and sent over the outbox's SMTP settings: a text and an HTML part
with the summary, then the attached files."""

from __future__ import annotations

import html
import logging
import smtplib
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from functools import partial
from typing import Any

import sqlalchemy as sa

from engine.identity.service import load_actor
from engine.jobs.types import JobContext, JobHandler
from engine.jobs.worker import isolated
from engine.reports.delivery import DELIVERY_JOB, DELIVERY_MAIL_JOB, find_delivery, run_delivery
from engine.reports.delivery_content import DeliveryContent, SummaryItem, compose_delivery
from engine.reports.service import ReportService
from engine.settings import Settings
from engine.storage.tables import users

log = logging.getLogger(__name__)
SMALL_SAMPLE_NOTE = "n<30"


def _delta(item: SummaryItem) -> str:
    numbers = isinstance(item.value, int | float) and isinstance(item.previous, int | float)
    if not numbers:
        return ""
    delta = item.value - item.previous
    return f"{'+' if delta >= 0 else ''}{delta:g} vs previous period"


def _text(content: DeliveryContent) -> str:
    lines = [content.subject, ""]
    for item in content.items:
        if item.columns:
            lines.append(f"{item.title}:")
            lines += ["  " + " | ".join(row) for row in item.rows]
            continue
        flags = " ".join(f for f in (_delta(item), SMALL_SAMPLE_NOTE if item.small else "") if f)
        lines.append(f"{item.title}: {_cell(item.value)} {flags}".rstrip())
    lines += [""] + list(content.notes) + [f"Attached: {a.file_name}" for a in content.attachments]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _html(content: DeliveryContent) -> str:
    esc = html.escape
    parts = [f"<h2>{esc(content.subject)}</h2>", "<table>"]
    for item in content.items:
        if item.columns:
            continue
        small = f" <small>{esc(SMALL_SAMPLE_NOTE)}</small>" if item.small else ""
        parts.append(
            f"<tr><th>{esc(item.title)}</th><td>{esc(_cell(item.value))}{small}</td>"
            f"<td>{esc(_delta(item))}</td></tr>"
        )
    parts.append("</table>")
    for item in content.items:
        if item.columns:
            header = "".join(f"<th>{esc(c)}</th>" for c in item.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in item.rows
            )
            parts.append(f"<h3>{esc(item.title)}</h3><table><tr>{header}</tr>{body}</table>")
    parts += [f"<p>{esc(note)}</p>" for note in content.notes]
    return "\n".join(parts)


def build_message(
    content: DeliveryContent, *, sender: str, recipient: str, job_id: int
) -> EmailMessage:
    """The mail: text and HTML alternatives of the summary, then the files."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = content.subject
    message["X-Tangram-Job"] = str(job_id)  # the same on every retry (engine/outbox/email.py)
    message.set_content(_text(content))
    message.add_alternative(_html(content), subtype="html")
    for attachment in content.attachments:
        maintype, _, subtype = attachment.media_type.split(";")[0].strip().partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.file_name)  # fmt: skip
    return message


def send_delivery_mail(
    ctx: JobContext, *, host: str, port: int, sender: str, timeout: float
) -> None:
    """The `report.delivery_mail` handler: compose as the recipient, send, or raise to retry."""
    app, dashboard = str(ctx.payload["app"]), str(ctx.payload["dashboard"])
    user_id = int(ctx.payload["user_id"])
    found = find_delivery(ctx.uow, app=app, dashboard=dashboard, key=str(ctx.payload["delivery"]))
    if found is None:
        return  # removed since the run was queued
    address = ctx.uow.conn.execute(
        sa.select(users.c.email).where(users.c.id == user_id, users.c.status == "active")
    ).scalar_one_or_none()
    if not address:
        log.info("job %s: user %s has no e-mail address: nothing sent", ctx.job_id, user_id)
        return
    at = datetime.fromisoformat(str(ctx.payload["at"]))
    runs = ReportService(ctx.uow.conn.engine, clock=lambda: at)  # the run's figures on retry
    actor = load_actor(uow=ctx.uow, user_id=user_id)
    content = compose_delivery(runs, ctx.uow, app=app, dashboard=dashboard,
                               delivery=found[1], actor=actor)  # fmt: skip
    message = build_message(content, sender=sender, recipient=address, job_id=ctx.job_id)
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(message)


def delivery_handlers(settings: Settings) -> dict[str, JobHandler]:
    """Both delivery job kinds, the mail bound to `settings`' SMTP server."""
    mail = partial(send_delivery_mail, host=settings.smtp_host, port=settings.smtp_port,
                   sender=settings.smtp_from, timeout=settings.smtp_timeout_seconds)  # fmt: skip
    return {DELIVERY_JOB: run_delivery, DELIVERY_MAIL_JOB: isolated(mail)}


def job_handlers() -> Mapping[str, JobHandler]:
    """The worker's provider (engine/jobs/providers.py); settings from the environment."""
    return delivery_handlers(Settings())


__all__ = ["build_message", "delivery_handlers", "job_handlers", "send_delivery_mail"]

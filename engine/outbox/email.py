"""E-mail delivery over SMTP for the `outbox.email` job."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

import sqlalchemy as sa

from engine.jobs.types import JobContext
from engine.storage.tables import users

log = logging.getLogger(__name__)


def compose_email(
    *, sender: str, recipient: str, subject: str, body: str, link: str | None, job_id: int
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    # the same job id on every retry lets a mail system drop a duplicate after a lost reply
    message["X-Tangram-Job"] = str(job_id)
    message.set_content(body if not link else f"{body}\n\n{link}\n")
    return message


def send_email(ctx: JobContext, *, host: str, port: int, sender: str, timeout: float) -> None:
    """The `outbox.email` handler: look up the address now, send, or raise to retry."""
    user_id = int(ctx.payload["user_id"])
    recipient = ctx.uow.conn.execute(
        sa.select(users.c.email).where(users.c.id == user_id)
    ).scalar_one_or_none()
    if not recipient:
        log.info("job %s: user %s has no e-mail address: nothing sent", ctx.job_id, user_id)
        return
    message = compose_email(
        sender=sender,
        recipient=recipient,
        subject=str(ctx.payload["subject"]),
        body=str(ctx.payload["body"]),
        link=ctx.payload.get("link"),
        job_id=ctx.job_id,
    )
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(message)


__all__ = ["compose_email", "send_email"]

"""The `public.answer_email` job: send an answer link to an address that is not a user's
(a customer contact), over the same SMTP settings as the outbox."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from functools import partial

from engine.jobs.types import JobContext, JobHandler
from engine.jobs.worker import isolated
from engine.outbox.email import compose_email
from engine.public.answer_links import ANSWER_EMAIL_JOB
from engine.settings import Settings


def send_answer_email(
    ctx: JobContext, *, host: str, port: int, sender: str, timeout: float, public_url: str = ""
) -> None:
    """Send the queued message; an SMTP failure raises, so the job is retried.

    The flow queued the link as a path (it does not know where the server is reached): it is
    made absolute here with the `public_url` setting."""
    body = str(ctx.payload["body"])
    link = str(ctx.payload.get("link") or "")
    if link.startswith("/") and public_url:
        body = body.replace(link, public_url + link)
    message = compose_email(
        sender=sender,
        recipient=str(ctx.payload["to"]),
        subject=str(ctx.payload["subject"]),
        body=body,
        link=None,  # the body already holds the link where the template put it
        job_id=ctx.job_id,
    )
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(message)


def answer_mail_handlers(settings: Settings) -> dict[str, JobHandler]:
    return {
        ANSWER_EMAIL_JOB: isolated(
            partial(
                send_answer_email,
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                timeout=settings.smtp_timeout_seconds,
                public_url=settings.resolved_public_url(),
            )
        )
    }


def job_handlers() -> Mapping[str, JobHandler]:
    """The worker's provider (engine/jobs/providers.py lists "engine.public.answer_mail")."""
    return answer_mail_handlers(Settings())


__all__ = ["answer_mail_handlers", "job_handlers", "send_answer_email"]

"""The outbox's job handlers (e-mail, webhooks), configured from settings."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from engine.jobs.types import JobHandler
from engine.jobs.worker import isolated
from engine.outbox.email import send_email
from engine.outbox.notifications import EMAIL_JOB
from engine.outbox.webhooks import WEBHOOK_JOB, deliver_webhook
from engine.settings import Settings


def outbox_handlers(settings: Settings) -> dict[str, JobHandler]:
    """Handlers bound to `settings`' SMTP server, webhook timeout and secrets."""
    return {
        EMAIL_JOB: isolated(
            partial(
                send_email,
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                timeout=settings.smtp_timeout_seconds,
            )
        ),
        WEBHOOK_JOB: isolated(
            partial(
                deliver_webhook,
                timeout=settings.webhook_timeout_seconds,
                secret_of=settings.secret,
            )
        ),
    }


def job_handlers() -> Mapping[str, JobHandler]:
    """The provider the worker collects (engine/jobs/providers.py); settings from the env."""
    return outbox_handlers(Settings())


__all__ = ["job_handlers", "outbox_handlers"]

"""The outbox: in-app notifications, e-mail and outbound webhooks, queued in the caller's
transaction and delivered by job workers."""

from engine.outbox.notifications import list_notifications, mark_read, notify
from engine.outbox.webhooks import send_webhook

__all__ = ["list_notifications", "mark_read", "notify", "send_webhook"]

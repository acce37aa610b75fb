"""Durable jobs: timers, SLA checks, notifications and webhooks as rows claimed by workers."""

from engine.jobs.errors import JobFailure
from engine.jobs.queue import cancel, enqueue, reschedule
from engine.jobs.types import JobContext, JobHandler

__all__ = ["JobContext", "JobFailure", "JobHandler", "cancel", "enqueue", "reschedule"]

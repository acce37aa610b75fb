"""Durable jobs: timers, SLA checks, notifications and webhooks as rows claimed by workers."""

"""Public link errors: unknown or closed links and tracking tokens, refused fields, rate limits."""

from __future__ import annotations

from engine.identity.errors import TooManyAttempts

LINK_NOT_FOUND = "public.link-not-found"
LINK_CLOSED = "public.link-closed"
TRACKING_NOT_FOUND = "public.tracking-not-found"
LOOKUP_NOT_FOUND = "public.lookup-not-found"
FIELD_NOT_ALLOWED = "public.field-not-allowed"
UNKNOWN_FIELD = "public.unknown-field"
NOT_FILLABLE = "public.field-not-fillable"
BAD_LOOKUP = "public.bad-lookup"
RATE_LIMITED = "public.rate-limited"


class RateLimited(TooManyAttempts):
    """Too many public requests from one client address or on one link (429, Retry-After)."""

    code = RATE_LIMITED


__all__ = [
    "BAD_LOOKUP",
    "FIELD_NOT_ALLOWED",
    "LINK_CLOSED",
    "LINK_NOT_FOUND",
    "LOOKUP_NOT_FOUND",
    "NOT_FILLABLE",
    "RATE_LIMITED",
    "TRACKING_NOT_FOUND",
    "UNKNOWN_FIELD",
    "RateLimited",
]

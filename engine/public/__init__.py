"""Public access: forms published as links for anonymous submitters, with tracking links."""

from engine.public._store import PublicLink
from engine.public.errors import RateLimited
from engine.public.service import Prefilled, PublicLinkService, Submitted, Tracked
from engine.public.spec import LimitsSpec, LookupSpec, PrefillSpec, PublicLinkSpec

__all__ = [
    "LimitsSpec",
    "LookupSpec",
    "PrefillSpec",
    "Prefilled",
    "PublicLink",
    "PublicLinkService",
    "PublicLinkSpec",
    "RateLimited",
    "Submitted",
    "Tracked",
]

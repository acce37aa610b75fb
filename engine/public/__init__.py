"""Public access: forms published as links for anonymous submitters, with tracking links.

The names load lazily: the form model (engine/forms/spec.py) reads `engine.public.spec`, and
this package's service in turn needs the form engine, so importing the package must not pull
the service in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.public._store import PublicLink
    from engine.public.errors import RateLimited
    from engine.public.service import Prefilled, PublicLinkService, Submitted, Tracked
    from engine.public.spec import LimitsSpec, LookupSpec, PrefillSpec, PublicLinkSpec

_HOMES = {
    "LimitsSpec": "engine.public.spec",
    "LookupSpec": "engine.public.spec",
    "PrefillSpec": "engine.public.spec",
    "PublicLinkSpec": "engine.public.spec",
    "Prefilled": "engine.public.service",
    "PublicLink": "engine.public._store",
    "PublicLinkService": "engine.public.service",
    "RateLimited": "engine.public.errors",
    "Submitted": "engine.public.service",
    "Tracked": "engine.public.service",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


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

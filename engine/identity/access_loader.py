"""What the permission compiler reads per request, in one query: the actor's role definitions
and the links of the forms asked about.

Role bodies and form links are parsed once per stored version: a definition's digest names
its content, so the parsed values are shared by every request (and stay right after any
publish, which changes the digest). Only a digest not seen before reads the body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.identity.related_access import NO_LINKS, FormLinks, form_links
from engine.identity.spec import RoleSpec
from engine.storage.tables import definition_versions, definitions

ROLE_KIND = "roles"
FORM_KIND = "forms"
_MAX_ENTRIES = 2048


@dataclass(frozen=True, slots=True)
class Loaded:
    """The actor's installed roles in the app, and each asked form's links."""

    roles: list[RoleSpec]
    links: dict[str, FormLinks]


def load_access_inputs(
    conn: sa.Connection, *, app: str, role_keys: Iterable[str], forms: Iterable[str]
) -> Loaded:
    """The live roles among `role_keys` (sorted by key) and the links of `forms` of `app`."""
    roles, wanted = sorted(set(role_keys)), sorted(set(forms))
    current = _current(conn, app, roles, wanted)
    specs = [
        _cached(conn, app, ROLE_KIND, key, current[(ROLE_KIND, key)], _role)
        for key in roles
        if (ROLE_KIND, key) in current
    ]
    links = {
        form: _cached(conn, app, FORM_KIND, form, current[(FORM_KIND, form)], _links)
        if (FORM_KIND, form) in current
        else NO_LINKS
        for form in wanted
    }
    return Loaded(specs, links)


def _current(
    conn: sa.Connection, app: str, roles: list[str], forms: list[str]
) -> dict[tuple[str, str], str]:
    """(kind, key) → current digest of the live roles and the forms asked about."""
    if not roles and not forms:
        return {}
    joined = definitions.join(
        definition_versions,
        sa.and_(
            definition_versions.c.definition_id == definitions.c.id,
            definition_versions.c.version == definitions.c.current_version,
        ),
    )
    wanted = []
    if roles:
        wanted.append(
            sa.and_(
                definitions.c.kind == ROLE_KIND,
                definitions.c.key.in_(roles),
                definitions.c.retired.is_(False),
            )
        )
    if forms:
        wanted.append(sa.and_(definitions.c.kind == FORM_KIND, definitions.c.key.in_(forms)))
    query = (
        sa.select(definitions.c.kind, definitions.c.key, definition_versions.c.digest)
        .select_from(joined)
        .where(definitions.c.app == app, sa.or_(*wanted))
    )
    return {(kind, key): str(digest) for kind, key, digest in conn.execute(query)}


def _role(app: str, body: Any) -> RoleSpec:
    return RoleSpec.model_validate(body)


def _links(app: str, body: Any) -> FormLinks:
    return form_links(app, body)


_CACHE: dict[tuple[str, str, str, str], Any] = {}
_LOCK = threading.Lock()


def _cached(conn: sa.Connection, app: str, kind: str, key: str, digest: str, parse: Any) -> Any:
    cache_key = (app, kind, key, digest)
    with _LOCK:
        found = _CACHE.get(cache_key)
    if found is not None:
        return found
    query = (
        sa.select(definition_versions.c.body)
        .select_from(definitions.join(definition_versions))
        .where(
            definitions.c.app == app,
            definitions.c.kind == kind,
            definitions.c.key == key,
            definition_versions.c.digest == digest,
        )
        .order_by(definition_versions.c.version.desc())
        .limit(1)
    )
    body = conn.execute(query).scalar_one()
    parsed = parse(app, body)
    with _LOCK:
        if len(_CACHE) >= _MAX_ENTRIES:
            _CACHE.clear()
        _CACHE[cache_key] = parsed
    return parsed


__all__ = ["FORM_KIND", "ROLE_KIND", "Loaded", "load_access_inputs"]

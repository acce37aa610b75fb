"""Public links declared in form definitions (`public: links:`), published by bundle imports.

Each declared link is stored like one made through the API, with `bundle_key` (the form's
key for it) in its options. A re-import updates that same row, so the token — the address
printed on QR labels — never changes; a link that left the bundle is disabled, not deleted,
so its tracking links keep working. Links made through the API are left alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import DefinitionError, Problem, SubmissionError
from engine.forms.spec import FormSpec
from engine.public._store import LinkStore, PublicLink
from engine.public.checks import check_link
from engine.public.spec import BundleLinkSpec
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

BUNDLE_KEY = "bundle_key"


def check_form_links(form: FormSpec, forms: Mapping[str, FormSpec]) -> list[Problem]:
    """Every problem of the form's declared links, as definition problems with their paths."""
    problems: list[Problem] = []
    for i, link in enumerate(form.public.links if form.public else ()):
        try:
            check_link(link, form=form, forms=forms)
        except SubmissionError as err:
            problems += [
                Problem(code=e.code, path=f"/public/links/{i}/{e.loc}", message=e.message)
                for e in err.errors
            ]
    return problems


def sync_bundle_links(
    uow: UnitOfWork,
    *,
    app: str,
    forms: Mapping[str, FormSpec],
    sources: Mapping[str, str] | None = None,
    actor: int | None = None,
) -> list[PublicLink]:
    """Publish or update the declared links of `app`'s forms and disable those that left.

    Raises:
        DefinitionError: a declared link does not fit its form (every problem, with its path).
    """
    problems = [
        p.located(source=(sources or {}).get(key))
        for key, form in forms.items()
        for p in check_form_links(form, forms)
    ]
    if problems:
        raise DefinitionError(problems, "a public link does not fit its form")
    store = LinkStore(uow.conn, now=utc_now())
    existing = {
        (link.form, str(link.options[BUNDLE_KEY])): link
        for link in store.list_app(app=app)
        if link.options.get(BUNDLE_KEY)
    }
    declared = dict(_declared(forms))
    changed: list[PublicLink] = []
    for (form, key), spec in declared.items():
        values = _values(spec)
        found = existing.get((form, key))
        if found is None:
            token = secrets.token_urlsafe(18)
            link = store.insert(
                token=token, app=app, form=form, values=values | {"created_by": actor}
            )
            _audit(uow, "public.link-create", link, actor)
        elif _differs(found, values):
            link = store.update(link_id=found.id, values=values)
            _audit(uow, "public.link-change", link, actor)
        else:
            continue
        changed.append(link)
    for (form, key), link in existing.items():
        if (form, key) not in declared and link.enabled:
            changed.append(store.update(link_id=link.id, values={"enabled": False}))
            _audit(uow, "public.link-change", changed[-1], actor)
    return changed


def _declared(forms: Mapping[str, FormSpec]) -> Iterator[tuple[tuple[str, str], BundleLinkSpec]]:
    for form_key, form in forms.items():
        for link in form.public.links if form.public else ():
            yield (form_key, link.key), link


def _values(spec: BundleLinkSpec) -> dict[str, Any]:
    return {
        "label": spec.label,
        "enabled": spec.enabled,
        "expires_at": spec.expires_at,
        "options": spec.options() | {BUNDLE_KEY: spec.key},
    }


def _differs(link: PublicLink, values: Mapping[str, Any]) -> bool:
    return any(getattr(link, name) != value for name, value in values.items())


def _audit(uow: UnitOfWork, action: str, link: PublicLink, actor: int | None) -> None:
    uow.audit.record(
        action=action,
        target_kind="public_link",
        target_key=f"{link.app}.{link.form}#{link.id}",
        actor=actor,
        detail={"bundle_key": link.options.get(BUNDLE_KEY), "enabled": link.enabled},
    )


__all__ = ["BUNDLE_KEY", "check_form_links", "sync_bundle_links"]

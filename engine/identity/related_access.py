"""What an actor may see of other forms' records through a form's relations and lookups.

A lookup copies a field of the related record; a `relation.field` name reads one. Both show
another form's data, so they follow the actor's access to that **target** form:

- the target field hidden there, or no `read` on the target form, or the relation itself
  hidden here: the lookup is hidden (left out like any hidden field; refused in filters and
  sorts);
- the target's read scope restricted (not `all`): the lookup shows only for related records
  in that scope. Until a caller has checked the records in SQL (`engine.forms.record_access.
  check_lookups`), such lookups are listed in `FormAccess.scoped_lookups` and serialise as
  null, so a path that forgets the check shows nothing rather than too much.

Pure: the caller reads the form's links (`form_links`) and compiles the target accesses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from engine.identity.permissions import FormAccess
from engine.identity.spec import FieldAccess


@dataclass(frozen=True, slots=True)
class FormLinks:
    """The fields of a form that reach other forms of its app.

    `relations` maps each single or multiple relation field to its target form key; `lookups`
    each lookup field to (relation field, target field).
    """

    relations: Mapping[str, str]
    lookups: Mapping[str, tuple[str, str]]
    # subform key → lookup column → (target form, target field), through a relation column
    row_lookups: Mapping[str, Mapping[str, tuple[str, str]]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def targets(self) -> frozenset[str]:
        in_rows = {form for columns in self.row_lookups.values() for form, _ in columns.values()}
        return frozenset(self.relations.values()) | in_rows


NO_LINKS = FormLinks(MappingProxyType({}), MappingProxyType({}))


def form_links(app: str, body: Mapping[str, Any]) -> FormLinks:
    """The links of a stored form definition (`fields` of its body), same-app targets only.

    Reads the stored body as it is (no model validation): it was validated when published,
    and this runs for every restricted request.
    """
    relations, lookups = _links(app, _fields(body))
    row_lookups: dict[str, Mapping[str, tuple[str, str]]] = {}
    for item in _fields(body):
        if item.get("type") == "subform" and isinstance(item.get("key"), str):
            row_relations, in_row = _links(app, _fields(item))
            found = {col: (row_relations[rel], field) for col, (rel, field) in in_row.items()}
            if found:
                row_lookups[item["key"]] = MappingProxyType(found)
    return FormLinks(
        MappingProxyType(relations), MappingProxyType(lookups), MappingProxyType(row_lookups)
    )


def _links(
    app: str, items: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Relations (key → target form) and lookups through them among `items`."""
    relations: dict[str, str] = {}
    lookups: dict[str, tuple[str, str]] = {}
    for item in items:
        key, kind = item.get("key"), item.get("type")
        if not isinstance(key, str) or item.get("retired"):
            continue
        if kind == "relation" and isinstance(item.get("form"), str):
            target = _same_app(app, item["form"])
            if target is not None:
                relations[key] = target
        elif kind == "lookup":
            relation, field = item.get("relation"), item.get("field")
            if isinstance(relation, str) and isinstance(field, str):
                lookups[key] = (relation, field)
    lookups = {key: link for key, link in lookups.items() if link[0] in relations}
    return relations, lookups


def _fields(body: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    items = body.get("fields")
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _same_app(app: str, ref: str) -> str | None:
    if "." not in ref:
        return ref
    owner, key = ref.split(".", 1)
    return key if owner == app else None


def with_related(
    access: FormAccess, links: FormLinks, targets: Mapping[str, FormAccess]
) -> FormAccess:
    """`access` that also governs what the form shows of related records.

    `targets` holds the actor's access to each target form (by form key); a target missing
    from it is treated as unreadable. Admins see everything: their access is returned as is.
    """
    if access.is_admin or not links.targets:
        return access
    related = _Related(access, links.relations, targets)
    levels: dict[str, FieldAccess] = dict(access.field_levels)
    scoped: dict[str, str] = {}
    for key, (relation, field) in links.lookups.items():
        target = related[relation]
        if access.is_hidden(relation) or not target.can("read") or target.is_hidden(field):
            levels[key] = "hidden"
        elif not target.is_unrestricted("read"):
            scoped[key] = relation
    return replace(
        access,
        field_levels=MappingProxyType(levels),
        related=related,
        scoped_lookups=MappingProxyType(scoped),
        row_masks=MappingProxyType(_row_masks(access, links, targets)),
    )


def _row_masks(
    access: FormAccess, links: FormLinks, targets: Mapping[str, FormAccess]
) -> dict[str, frozenset[str]]:
    """Subform lookup columns to null: rows are not scope-checked, so anything short of reading
    every record of the target, that field included, masks the column."""
    masks: dict[str, frozenset[str]] = {}
    for sub, columns in links.row_lookups.items():
        masked = frozenset(
            column
            for column, (form, field) in columns.items()
            if not _reads_all(targets.get(form) or _no_access(access, form), field)
        )
        if masked:
            masks[sub] = masked
    return masks


def _reads_all(target: FormAccess, field: str) -> bool:
    return target.can("read") and target.is_unrestricted("read") and not target.is_hidden(field)


class _Related(Mapping[str, FormAccess]):
    """Relation key → the actor's access to its target form, looked up when first asked.

    `targets` may itself compile lazily: most requests never ask about most relations.
    """

    def __init__(
        self, access: FormAccess, relations: Mapping[str, str], targets: Mapping[str, FormAccess]
    ) -> None:
        self._access, self._relations, self._targets = access, relations, targets

    def __getitem__(self, relation: str) -> FormAccess:
        target = self._relations[relation]
        return self._targets.get(target) or _no_access(self._access, target)

    def __iter__(self) -> Iterator[str]:
        return iter(self._relations)

    def __len__(self) -> int:
        return len(self._relations)


class LazyAccesses(Mapping[str, FormAccess]):
    """Form key → access, built by `build` on first use and kept (one request's worth)."""

    def __init__(self, keys: Iterable[str], build: Callable[[str], FormAccess]) -> None:
        self._keys, self._build = frozenset(keys), build
        self._done: dict[str, FormAccess] = {}

    def __getitem__(self, key: str) -> FormAccess:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._done:
            self._done[key] = self._build(key)
        return self._done[key]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


def checked(access: FormAccess) -> FormAccess:
    """`access` once the caller has nulled the lookups of out-of-scope related records."""
    if not access.scoped_lookups:
        return access
    return replace(access, scoped_lookups=MappingProxyType({}))


def _no_access(access: FormAccess, form: str) -> FormAccess:
    return FormAccess(
        app=access.app,
        form=form,
        actions=frozenset(),
        scopes=MappingProxyType({}),
        field_levels=MappingProxyType({}),
        default_level="hidden",
    )


__all__ = ["NO_LINKS", "FormLinks", "LazyAccesses", "checked", "form_links", "with_related"]

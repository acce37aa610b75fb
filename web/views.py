"""View models: what pages show, built from engine services (never raw rows or specs)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.labels import label_text
from engine.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class DefinitionView:
    kind: str
    key: str
    label: str
    version: int


@dataclass(frozen=True, slots=True)
class AppView:
    key: str
    name: str
    version: str
    definitions: tuple[DefinitionView, ...]

    def of_kind(self, kind: str) -> list[DefinitionView]:
        return [d for d in self.definitions if d.kind == kind]


def load_app_views(*, db: sa.Engine, lang: str) -> list[AppView]:
    """Every installed app with its current definitions, labels in `lang`."""
    with UnitOfWork(db) as uow:
        views = []
        for app in uow.definitions.list_apps():
            found = []
            for d in uow.definitions.list_definitions(app=app.key):
                body = uow.definitions.get_current(app=app.key, kind=d.kind, key=d.key).body
                label = label_text(body.get("label") or d.key, lang)
                found.append(DefinitionView(d.kind, d.key, label, d.current_version))
            views.append(AppView(app.key, label_text(app.name, lang), app.version, tuple(found)))
    return views


__all__ = ["AppView", "DefinitionView", "load_app_views"]

"""The kinds of definition a bundle holds: folder name → spec model class.

The default registry imports each engine's spec module on first use, so importing this
module does no work and a missing engine fails only when its folder is actually loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from engine.spec_base import SpecModel

KindRegistry = Mapping[str, type[SpecModel]]

_DEFAULT_MODELS: dict[str, str] = {
    "forms": "engine.forms.spec:FormSpec",
    "flows": "engine.flows.spec:FlowSpec",
    "reports": "engine.reports.spec:ReportSpec",
    "dashboards": "engine.reports.spec:DashboardSpec",
    "roles": "engine.identity.spec:RoleSpec",
    "menus": "engine.apps.spec:MenuSpec",
    "views": "engine.forms.views:ViewSpec",
    "slas": "engine.flows.sla_spec:SlaSpec",
    "calendars": "engine.flows.calendar_spec:CalendarSpec",
}


class LazyKinds(Mapping[str, type[SpecModel]]):
    """A kind registry whose model classes are named `module:Class` and imported on access."""

    __slots__ = ("_targets", "_resolved")

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)
        self._resolved: dict[str, type[SpecModel]] = {}

    def __getitem__(self, kind: str) -> type[SpecModel]:
        if kind not in self._resolved:
            module_name, _, class_name = self._targets[kind].partition(":")
            model = getattr(importlib.import_module(module_name), class_name)
            self._resolved[kind] = model
        return self._resolved[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


DEFAULT_KINDS: KindRegistry = LazyKinds(_DEFAULT_MODELS)

DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")
OPAQUE_FOLDERS = ("data", "pages")
OPAQUE_FILES = ("demo.yaml",)
MANIFEST_NAMES = ("bundle.yaml", "bundle.yml", "bundle.json")

__all__ = [
    "DEFAULT_KINDS",
    "DEFINITION_SUFFIXES",
    "KindRegistry",
    "LazyKinds",
    "MANIFEST_NAMES",
    "OPAQUE_FILES",
    "OPAQUE_FOLDERS",
]

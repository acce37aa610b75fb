"""Menu definitions: a tree of items pointing at forms, reports, dashboards or URLs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from engine.forms.fields import FormRef
from engine.labels import Label
from engine.spec_base import Key, SpecModel

MENU_SCHEMA_VERSION = 1
MAX_MENU_DEPTH = 4


class MenuItem(SpecModel):
    """A menu entry: a group (with `items`) or a link to exactly one target."""

    key: Key
    label: Label
    icon: str | None = None
    form: FormRef | None = None
    view: Key | None = Field(None, description="A saved view of the form")
    report: Key | None = None
    dashboard: Key | None = None
    page: Key | None = None
    url: Annotated[str, Field(pattern=r"^(https?://|/)")] | None = None
    roles: tuple[Key, ...] = Field((), description="Only these roles see it; empty: everyone")
    items: tuple[MenuItem, ...] = ()

    @model_validator(mode="after")
    def _one_target(self) -> MenuItem:
        targets = [self.form, self.report, self.dashboard, self.page, self.url]
        count = sum(target is not None for target in targets)
        if self.view is not None and self.form is None:
            raise PydanticCustomError("menu.missing-option", "view needs form")
        if self.items and count:
            raise PydanticCustomError("menu.bad-item", "a group has items and no target")
        if not self.items and count != 1:
            raise PydanticCustomError("menu.bad-item", "an item links to exactly one target")
        if _depth(self) > MAX_MENU_DEPTH:
            raise PydanticCustomError("menu.too-deep", "menus nest at most 4 levels")
        return self

    def targets(self) -> list[tuple[str, str]]:
        """(kind, key) of this item and every item below it, for reference checks."""
        found = [
            (kind, value)
            for kind in ("form", "report", "dashboard", "page")
            if (value := getattr(self, kind)) is not None
        ]
        for item in self.items:
            found.extend(item.targets())
        return found


def _depth(item: MenuItem) -> int:
    return 1 + max((_depth(child) for child in item.items), default=0)


class MenuSpec(SpecModel):
    """An app's navigation."""

    schema_version: Annotated[int, Field(ge=1, le=MENU_SCHEMA_VERSION)] = MENU_SCHEMA_VERSION
    key: Key
    label: Label
    icon: str | None = None
    items: tuple[MenuItem, ...] = ()


__all__ = ["MAX_MENU_DEPTH", "MENU_SCHEMA_VERSION", "MenuItem", "MenuSpec"]

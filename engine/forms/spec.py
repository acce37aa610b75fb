"""Form definitions: `FormSpec` (fields, layout, constraints) and shared `OptionSetSpec`s.

Field models live in `engine.forms.fields`; this module re-exports the union as `FieldSpec`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from engine.forms.fields import (
    ChildFieldSpec,
    FieldSpec,
    Option,
    SubformField,
    Width,
    check_option_tree,
)
from engine.labels import Label
from engine.public.spec import FormPublicLinks
from engine.spec_base import Key, SpecModel

FORM_SCHEMA_VERSION = 1

KeyList = Annotated[tuple[Key, ...], Field(min_length=1)]


class LayoutCell(SpecModel):
    """A field placed in a section, optionally with a width other than its own."""

    field: Key
    width: Width | None = None


class LayoutSection(SpecModel):
    """A titled group of fields laid out on a grid of `columns` columns."""

    key: Key
    label: Label | None = None
    columns: Literal[1, 2, 3, 4] = 2
    collapsed: bool = False
    visible_if: str | None = None
    fields: tuple[Key | LayoutCell, ...] = ()


class LayoutTab(SpecModel):
    key: Key
    label: Label
    sections: Annotated[tuple[LayoutSection, ...], Field(min_length=1)]


class Layout(SpecModel):
    """Tabs of sections, or sections alone. Fields not placed anywhere follow in field order."""

    tabs: tuple[LayoutTab, ...] = ()
    sections: tuple[LayoutSection, ...] = ()

    @model_validator(mode="after")
    def _tabs_or_sections(self) -> Layout:
        if self.tabs and self.sections:
            raise PydanticCustomError(
                "form.conflicting-options", "give tabs or sections at the top level, not both"
            )
        return self

    def all_sections(self) -> tuple[LayoutSection, ...]:
        """Every section, those inside tabs included, in display order."""
        nested = tuple(section for tab in self.tabs for section in tab.sections)
        return nested + self.sections


# The `public:` block (links published on import) is the public-link engine's model.
PublicAccess = FormPublicLinks


class OptionSetSpec(SpecModel):
    """A named list of options shared by select, multiselect and cascade fields of any form."""

    key: Key
    label: Label
    description: Label | None = None
    levels: Annotated[int, Field(ge=1, le=6)] = 1
    options: Annotated[tuple[Option, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _tree(self) -> OptionSetSpec:
        check_option_tree(self.options, max_depth=self.levels)
        return self


class OptionSetsFile(SpecModel):
    """The shape of `data/option_sets.yaml` in a bundle."""

    schema_version: Annotated[int, Field(ge=1, le=1)] = 1
    option_sets: tuple[OptionSetSpec, ...]


class FormSpec(SpecModel):
    """One form: its fields (one table column each, mostly), layout and table constraints."""

    schema_version: Annotated[int, Field(ge=1, le=FORM_SCHEMA_VERSION)] = FORM_SCHEMA_VERSION
    key: Key
    label: Label
    description: Label | None = None
    icon: str | None = None
    fields: tuple[FieldSpec, ...]
    layout: Layout | None = None
    option_sets: tuple[OptionSetSpec, ...] = Field(
        (), description="Option sets private to this form; fields may also use the bundle's"
    )
    title_field: Key | None = None
    indexes: tuple[KeyList, ...] = ()
    unique: tuple[KeyList, ...] = Field((), description="Composite unique constraints")
    append_only: bool = Field(False, description="Records can be added but never edited")
    public: PublicAccess | None = None

    def field_map(self) -> dict[str, FieldSpec]:
        """Top-level fields by key (the last one wins if keys repeat; the compiler reports it)."""
        return {field.key: field for field in self.fields}


__all__ = [
    "FORM_SCHEMA_VERSION",
    "ChildFieldSpec",
    "FieldSpec",
    "FormSpec",
    "Layout",
    "LayoutCell",
    "LayoutSection",
    "LayoutTab",
    "Option",
    "OptionSetSpec",
    "OptionSetsFile",
    "PublicAccess",
    "SubformField",
]

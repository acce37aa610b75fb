"""The form engine: form definitions, field types and the form compiler.

The compiler (and with it the expression language) is imported on first use, so that code
reading specs only does not load it.
"""

from typing import Any

from engine.forms.fields import FIELD_CLASSES, check_autonumber_pattern
from engine.forms.spec import (
    FORM_SCHEMA_VERSION,
    ChildFieldSpec,
    FieldSpec,
    FormSpec,
    Layout,
    LayoutCell,
    LayoutSection,
    LayoutTab,
    Option,
    OptionSetsFile,
    OptionSetSpec,
    PublicAccess,
    SubformField,
)

__all__ = [
    "FIELD_CLASSES",
    "FORM_SCHEMA_VERSION",
    "ChildFieldSpec",
    "CompiledForm",
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
    "check_autonumber_pattern",
    "compile_form",
]


def __getattr__(name: str) -> Any:
    if name in ("CompiledForm", "compile_form"):
        from engine.forms import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""JSON Schemas of the definition kinds, and validation of one definition by kind.

`python -m engine.schemas [DIR]` writes `DIR/<kind>.schema.json` (default: the repository's
`schemas/`), so packs can be validated without running Tangram.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.errors import DefinitionError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# kind -> (module, class); imported lazily so that no model is built at import time.
KINDS: dict[str, tuple[str, str]] = {
    "bundle": ("engine.bundles.manifest", "BundleManifest"),
    "form": ("engine.forms.spec", "FormSpec"),
    "option_sets": ("engine.forms.spec", "OptionSetsFile"),
    "flow": ("engine.flows.spec", "FlowSpec"),
    "report": ("engine.reports.spec", "ReportSpec"),
    "dashboard": ("engine.reports.spec", "DashboardSpec"),
    "role": ("engine.identity.spec", "RoleSpec"),
    "menu": ("engine.apps.spec", "MenuSpec"),
    "view": ("engine.forms.views", "ViewSpec"),
    "calendar": ("engine.flows.calendar_spec", "CalendarSpec"),
    "sla": ("engine.flows.sla_spec", "SlaSpec"),
}


def model_for(kind: str) -> type[BaseModel]:
    """The definition model of `kind`.

    Raises:
        KeyError: for an unknown kind.
        ImportError: when the module of that kind is not there (yet).
    """
    module_name, class_name = KINDS[kind]
    model: type[BaseModel] = getattr(importlib.import_module(module_name), class_name)
    return model


def available_kinds() -> list[str]:
    """The kinds whose models can be imported now."""
    found = []
    for kind in KINDS:
        try:
            model_for(kind)
        except (ImportError, AttributeError):
            continue
        found.append(kind)
    return found


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a definition file of `kind`."""
    schema = model_for(kind).model_json_schema(mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def render_schema(kind: str) -> str:
    """The schema as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema_for(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(target: Path) -> list[Path]:
    """Write `<kind>.schema.json` for every available kind into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in available_kinds():
        path = target / f"{kind}.schema.json"
        path.write_text(render_schema(kind), encoding="utf-8")
        written.append(path)
    return written


def validate_definition(kind: str, data: Any, *, source: str | None = None) -> BaseModel:
    """Validate parsed YAML/JSON `data` as a `kind` definition, as the bundle loader does.

    Raises:
        DefinitionError: with one problem per pydantic error, located by JSON pointer.
    """
    from engine.bundles import validate_document  # the loader owns the error conversion

    spec, problems = validate_document(model_for(kind), source or "", data)
    if problems or spec is None:
        raise DefinitionError(problems)
    return spec


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    target = Path(argv[0]) if argv else root / "schemas"
    for path in write_schemas(target):
        print(path)
    missing = sorted(set(KINDS) - set(available_kinds()))
    if missing:
        print(f"skipped (model not available): {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


__all__ = [
    "KINDS",
    "available_kinds",
    "model_for",
    "render_schema",
    "schema_for",
    "validate_definition",
    "write_schemas",
]

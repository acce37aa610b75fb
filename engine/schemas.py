"""JSON Schemas of the definition kinds, and pydantic errors turned into located `Problem`s.

`python -m engine.schemas [DIR]` writes `DIR/<kind>.schema.json` (default: the repository's
`schemas/`), so packs can be validated without running Tangram.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.errors import DefinitionError, Problem

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
}

# pydantic error type -> problem code; custom errors raised by validators keep their own code.
ERROR_CODES: dict[str, str] = {
    "extra_forbidden": "bundle.unknown-key",
    "union_tag_invalid": "bundle.unknown-type",
    "union_tag_not_found": "bundle.missing-key",
    "missing": "bundle.missing-key",
}
DEFAULT_ERROR_CODE = "bundle.invalid-value"


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


# --- validation errors as problems -------------------------------------------------------


def validate_definition(kind: str, data: Any, *, source: str | None = None) -> BaseModel:
    """Validate parsed YAML/JSON `data` as a `kind` definition.

    Raises:
        DefinitionError: with one problem per pydantic error, located by JSON pointer.
    """
    model = model_for(kind)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise DefinitionError(problems_from_validation_error(err, data, source=source)) from err


def problems_from_validation_error(
    err: ValidationError, data: Any, *, source: str | None = None
) -> list[Problem]:
    """One `Problem` per error; the loc becomes a JSON pointer into `data`."""
    problems = []
    for item in err.errors(include_url=False):
        path = _pointer(item["loc"], data, missing=item["type"] == "missing")
        error_type = item["type"]
        code = error_type if "." in error_type else ERROR_CODES.get(error_type, DEFAULT_ERROR_CODE)
        problem = Problem(
            code=code, path=path, message=item["msg"], hint=_hint(item), source=source
        )
        problems.append(problem)
    return problems


def _pointer(loc: tuple[int | str, ...], data: Any, *, missing: bool) -> str:
    """Walk `loc` through `data`, dropping the tags pydantic inserts for union members."""
    parts: list[str] = []
    node = data
    for index, step in enumerate(loc):
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        elif isinstance(node, list | tuple) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif missing and index == len(loc) - 1 and isinstance(node, Mapping):
            node = None  # the missing key itself
        else:
            continue  # a union member tag such as 'text' or 'str'
        parts.append(str(step).replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts) if parts else ""


def _hint(item: Mapping[str, Any]) -> str | None:
    ctx = item.get("ctx") or {}
    if item["type"] == "union_tag_invalid":
        return f"allowed types: {ctx.get('expected_tags', '')}"
    return None


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
    "problems_from_validation_error",
    "render_schema",
    "schema_for",
    "validate_definition",
    "write_schemas",
]

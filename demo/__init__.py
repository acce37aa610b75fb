"""Demo data for bundles (AFTERSALES.md §5): `tangram demo` reads a bundle's `demo.yaml` and
runs the generator module it names. Domain generators live here, never in engine/."""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlalchemy as sa

from demo.settings import DemoError, DemoResult, DemoSettings, read_settings

NO_SETTINGS = "demo.no-settings"


def run_generator(
    db: sa.Engine | sa.Connection, settings: DemoSettings, *, files: Path
) -> DemoResult:
    """Import `settings.generator` and run its `load`."""
    if not settings.generator.startswith("demo."):
        raise DemoError(
            "demo.yaml: /generator must name a module of the demo package", code="demo.bad-settings"
        )
    try:
        module = importlib.import_module(settings.generator)
    except ImportError as err:
        raise DemoError(
            f"demo.yaml: /generator {settings.generator!r} cannot be imported",
            code="demo.bad-settings",
        ) from err
    result: DemoResult = module.load(db, settings, files=files)
    return result


__all__ = [
    "NO_SETTINGS",
    "DemoError",
    "DemoResult",
    "DemoSettings",
    "read_settings",
    "run_generator",
]

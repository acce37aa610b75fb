"""A bundle's `demo.yaml`: which generator loads its demo data, and the parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from engine.errors import EngineError

BAD_SETTINGS = "demo.bad-settings"


class DemoError(EngineError):
    """A demo.yaml that cannot be used, or an app that cannot take demo data."""


@dataclass(frozen=True, slots=True)
class DemoSettings:
    generator: str  # a module with `load(db, settings, *, files) -> DemoResult`
    tickets: int
    seed: int
    end_date: date
    months: int


@dataclass(frozen=True, slots=True)
class DemoResult:
    loaded: bool  # False: the data was there already
    counts: dict[str, int] = field(default_factory=dict)


def read_settings(
    raw: bytes, *, tickets: int | None = None, seed: int | None = None
) -> DemoSettings:
    """Parse demo.yaml, with command-line overrides.

    Raises:
        DemoError: `demo.bad-settings`, naming the key at fault.
    """
    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise DemoError(f"demo.yaml: not YAML: {err}", code=BAD_SETTINGS) from err
    if not isinstance(data, dict):
        raise DemoError("demo.yaml: a mapping of settings is expected", code=BAD_SETTINGS)
    values = {
        **data,
        **({"tickets": tickets} if tickets is not None else {}),
        **({"seed": seed} if seed is not None else {}),
    }
    expected = {"generator": str, "tickets": int, "seed": int, "end_date": date, "months": int}
    for key, kind in expected.items():
        if not isinstance(values.get(key), kind) or isinstance(values.get(key), bool):
            raise DemoError(f"demo.yaml: /{key} must be a {kind.__name__}", code=BAD_SETTINGS)
    if not 1 <= values["tickets"] <= 1_000_000 or not 1 <= values["months"] <= 120:
        raise DemoError("demo.yaml: /tickets is 1..1,000,000 and /months 1..120", code=BAD_SETTINGS)
    return DemoSettings(**{key: values[key] for key in expected})


__all__ = ["BAD_SETTINGS", "DemoError", "DemoResult", "DemoSettings", "read_settings"]

"""Every package's public API is its `__all__`, and every name listed there exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import api
import engine


def _packages() -> list[str]:
    names = ["engine", "api"]
    for root in (engine, api):
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            if info.ispkg:
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _packages())
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == []

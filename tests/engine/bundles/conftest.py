"""Fixtures for bundle tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from bundle_helpers import write_tree


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Mapping[str, str | bytes]], Path]:
    counter = iter(range(1000))

    def make(files: Mapping[str, str | bytes]) -> Path:
        return write_tree(tmp_path / f"pack{next(counter)}", files)

    return make

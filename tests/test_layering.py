"""The layering rules of STYLE.md §1, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))
PURE_LAYERS = {"spec.py", "compiler.py", "runtime.py"}


def _is_pure(path: Path) -> bool:
    in_expr = path.parent.name == "expr" and path.name != "sql.py"
    return path.name in PURE_LAYERS or in_expr


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_never_imports_web_layers(path: Path) -> None:
    forbidden = {"api", "web", "fastapi", "starlette", "jinja2", "uvicorn"}
    assert not {_top(m) for m in imported_modules(path)} & forbidden


@pytest.mark.parametrize(
    "path",
    [p for p in ENGINE_FILES if _is_pure(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_pure_layers_never_touch_storage(path: Path) -> None:
    modules = imported_modules(path)
    assert "sqlalchemy" not in {_top(m) for m in modules}
    assert not [m for m in modules if m.startswith("engine.storage")]


def test_layering_check_sees_imports() -> None:
    # Guards the guard: the parser must find imports in a known module.
    assert "sqlalchemy" in {_top(m) for m in imported_modules(ROOT / "engine/storage/database.py")}

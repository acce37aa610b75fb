"""The guarded YAML and JSON readers on their own."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from engine.bundles import DEFAULT_LIMITS, BundleLimits, parse_document


def parse(name: str, text: str, limits: BundleLimits = DEFAULT_LIMITS) -> tuple[object, list]:
    return parse_document(name, text.encode(), limits)


def test_types_follow_json_not_yaml_1_1() -> None:
    value, problems = parse("a.yaml", "a: no\nb: on\nc: 2024-01-31\nd: true\n1: x\ne: 1.5\n")
    assert problems == []
    assert value == {"a": "no", "b": "on", "c": "2024-01-31", "d": True, "1": "x", "e": 1.5}


def test_duplicate_yaml_key_is_located() -> None:
    _, problems = parse("f.yaml", "fields:\n  - key: a\n    label: A\n    label: B\n")
    assert [(p.code, p.path, p.source) for p in problems] == [
        ("bundle.duplicate-key", "/fields/0/label", "f.yaml")
    ]
    assert "line 4" in problems[0].message


def test_duplicate_json_key_is_located() -> None:
    _, problems = parse("f.json", '{"fields": [{"key": "a", "key": "b"}]}')
    assert [(p.code, p.path) for p in problems] == [("bundle.duplicate-key", "/fields/0/key")]


def test_yaml_syntax_error_has_line_and_column() -> None:
    _, problems = parse("f.yaml", "key: a\nfields: [\n  - x\n")
    assert [(p.code, p.path) for p in problems] == [("bundle.yaml-syntax", "")]
    assert "line" in problems[0].message and "column" in problems[0].message


def test_json_syntax_error_has_line_and_column() -> None:
    _, problems = parse("f.json", '{"key": "a",\n "x": }')
    assert [(p.code, p.path) for p in problems] == [("bundle.json-syntax", "")]
    assert "line 2" in problems[0].message


def test_json_nan_is_refused() -> None:
    _, problems = parse("f.json", '{"x": NaN}')
    assert [p.code for p in problems] == ["bundle.json-syntax"]


def test_alias_bomb_is_refused_fast_and_small() -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 10):
        prev, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    text = "\n".join(lines) + "\n"  # a billion strings once expanded
    tracemalloc.start()
    started = time.perf_counter()
    value, problems = parse("bomb.yaml", text)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert value is None
    assert [(p.code, p.path) for p in problems] == [("bundle.yaml-alias", "")]
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024


def test_small_aliases_are_allowed() -> None:
    value, problems = parse("a.yaml", "base: &b {x: 1}\nother: *b\n")
    assert problems == [] and value == {"base": {"x": 1}, "other": {"x": 1}}


def test_recursive_alias_is_refused() -> None:
    _, problems = parse("a.yaml", "a: &a [*a]\n")
    assert [p.code for p in problems] == ["bundle.yaml-alias"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "[" * 100_000 + "]" * 100_000),
        ("deep.yaml", "- " * 100_000 + "x\n"),
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        ("deep.json", "[" * 70 + "]" * 70),
    ],
)
def test_deep_nesting_is_refused_without_crashing(name: str, text: str) -> None:
    _, problems = parse(name, text)
    assert [p.code for p in problems] == ["bundle.too-deep"]


def test_non_scalar_key_is_refused() -> None:
    _, problems = parse("a.yaml", "? [a, b]\n: 1\n")
    assert [(p.code, p.path) for p in problems] == [("bundle.yaml-key-type", "")]


def test_non_utf8_is_refused() -> None:
    _, problems = parse_document("a.yaml", "key: 工单".encode("gb18030"), DEFAULT_LIMITS)
    assert [(p.code, p.source) for p in problems] == [("bundle.encoding", "a.yaml")]

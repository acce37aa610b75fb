"""Semantic versions, version ranges and the manifest's validation of them."""

from __future__ import annotations

import pytest
from bundle_helpers import TINY_KINDS, problems_of, zip_bytes
from pydantic import ValidationError

from engine.bundles import BundleManifest, load_bundle, parse_range, parse_version


@pytest.mark.parametrize(
    "text", ["0.1.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0+build.5"]
)
def test_valid_versions(text: str) -> None:
    parse_version(text)


@pytest.mark.parametrize("text", ["1", "1.2", "01.2.3", "1.2.3.4", "v1.2.3", "1.2.3-", ""])
def test_invalid_versions(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)


def test_precedence_follows_semver() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-beta.2", "1.0.0", "1.0.1"]
    versions = [parse_version(v) for v in ordered]
    assert versions == sorted(versions, key=lambda v: v._sort_key())
    assert all(a < b for a, b in zip(versions, versions[1:], strict=False))


@pytest.mark.parametrize(
    ("spec", "version", "inside"),
    [
        (">=0.1,<1.0", "0.1.0", True),
        (">=0.1,<1.0", "0.9.9", True),
        (">=0.1,<1.0", "1.0.0", False),
        (">=0.2", "0.1.0", False),
        ("==1.2.3", "1.2.3", True),
        ("!=1.2.3", "1.2.3", False),
        ("*", "99.0.0", True),
        ("> 1.0, <= 2", "2.0.0", True),
    ],
)
def test_ranges(spec: str, version: str, inside: bool) -> None:
    assert parse_range(spec).contains(version) is inside


@pytest.mark.parametrize("spec", ["~1.0", ">=", "1.0", ">=a.b", ">=0.1,,<1"])
def test_invalid_ranges(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_range(spec)


def test_manifest_validates_versions() -> None:
    with pytest.raises(ValidationError) as caught:
        BundleManifest.model_validate(
            {
                "key": "x",
                "name": "X",
                "version": "1.0",
                "engine": "~1",
                "dependencies": [{"key": "y", "version": "bad"}],
            }
        )
    locs = {err["loc"] for err in caught.value.errors()}
    assert locs == {("version",), ("engine",), ("dependencies", 0, "version")}


def test_unquoted_version_gets_a_quoting_hint() -> None:
    data = zip_bytes({"bundle.yaml": "key: p\nname: P\nversion: 1.0\n"})
    problems = problems_of(lambda: load_bundle(data, kinds=TINY_KINDS))
    assert [(p.code, p.path) for p in problems] == [("bundle.invalid-value", "/version")]
    assert "quote" in (problems[0].hint or "")

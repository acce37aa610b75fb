"""Semantic versions and version ranges, as written in `bundle.yaml`.

A version is `MAJOR.MINOR.PATCH` with an optional `-prerelease` and `+build` (semver.org).
A range is comma-separated comparators, all of which must hold: `>=0.1,<1.0`, `==1.2.3`,
`!=1.0.1`, or `*` for any version. Versions inside a range may omit trailing parts (`0.1`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_LOOSE = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_COMPARATOR = re.compile(r"^(>=|<=|==|!=|>|<)\s*(\S+)$")


@dataclass(frozen=True, slots=True, order=False)
class Version:
    """A parsed version; compares by semver precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    def _sort_key(self) -> tuple[object, ...]:
        # A release sorts after its pre-releases; numeric identifiers sort before text ones.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def __lt__(self, other: Version) -> bool:
        return self._sort_key() < other._sort_key()

    def __le__(self, other: Version) -> bool:
        return self._sort_key() <= other._sort_key()

    def __gt__(self, other: Version) -> bool:
        return self._sort_key() > other._sort_key()

    def __ge__(self, other: Version) -> bool:
        return self._sort_key() >= other._sort_key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text + ("-" + ".".join(map(str, self.prerelease)) if self.prerelease else "")


def _prerelease(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def parse_version(text: str) -> Version:
    """Parse a full semantic version (`1.2.3`, `1.0.0-beta.1`); raise ValueError otherwise."""
    match = _SEMVER.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a semantic version (expected MAJOR.MINOR.PATCH)")
    major, minor, patch, pre, _build = match.groups()
    return Version(int(major), int(minor), int(patch), _prerelease(pre))


def parse_loose_version(text: str) -> Version:
    """Parse a version that may omit minor and patch (`1`, `0.1`), as used inside ranges."""
    match = _LOOSE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a version")
    major, minor, patch, pre = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), _prerelease(pre))


def _equal(a: Version, b: Version) -> bool:
    return a._sort_key() == b._sort_key()


def _not_equal(a: Version, b: Version) -> bool:
    return a._sort_key() != b._sort_key()


_OPERATORS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": Version.__ge__,
    "<=": Version.__le__,
    ">": Version.__gt__,
    "<": Version.__lt__,
    "==": _equal,
    "!=": _not_equal,
}


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A conjunction of comparators; the empty tuple (written `*`) admits every version."""

    comparators: tuple[tuple[str, Version], ...]

    def contains(self, version: Version | str) -> bool:
        if isinstance(version, str):
            version = parse_loose_version(version)
        return all(_OPERATORS[op](version, bound) for op, bound in self.comparators)


def parse_range(text: str) -> VersionRange:
    """Parse `>=0.1,<1.0` (or `*`); raise ValueError naming the bad comparator."""
    text = text.strip()
    if text in ("*", ""):
        return VersionRange(())
    comparators = []
    for part in text.split(","):
        match = _COMPARATOR.match(part.strip())
        if match is None:
            raise ValueError(
                f"{part.strip()!r} is not a comparator (use >=, >, <=, <, == or != and a version)"
            )
        comparators.append((match.group(1), parse_loose_version(match.group(2))))
    return VersionRange(tuple(comparators))


__all__ = [
    "Version",
    "VersionRange",
    "parse_loose_version",
    "parse_range",
    "parse_version",
]

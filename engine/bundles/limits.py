"""Resource caps applied while reading a bundle, so a hostile pack cannot exhaust memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """Caps on a bundle's size; every one is enforced on bytes actually read, not on headers."""

    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 128 * 1024 * 1024
    max_members: int = 10_000
    max_yaml_nodes: int = 500_000  # after expanding aliases
    max_depth: int = 64  # nesting of mappings and sequences in one file


DEFAULT_LIMITS = BundleLimits()

__all__ = ["DEFAULT_LIMITS", "BundleLimits"]

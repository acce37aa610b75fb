"""`Bundle`: a loaded, validated template pack held in memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from engine.bundles.manifest import BundleManifest
from engine.spec_base import SpecModel


@dataclass(frozen=True, slots=True)
class Bundle:
    """A validated bundle.

    Attributes:
        manifest: the parsed `bundle.yaml`.
        definitions: kind (folder name) → definition key → spec; every registered kind is
            present, possibly empty.
        sources: (kind, key) → the file it came from, e.g. `forms/ticket.yaml`.
        files: opaque files kept byte for byte (`data/…`, `pages/…`, `demo.yaml`).
    """

    manifest: BundleManifest
    definitions: Mapping[str, Mapping[str, SpecModel]]
    sources: Mapping[tuple[str, str], str]
    files: Mapping[str, bytes]

    def definition(self, kind: str, key: str) -> SpecModel:
        """The definition `key` of `kind`; KeyError if the bundle has none."""
        return self.definitions[kind][key]

    def iter_definitions(self) -> Iterator[tuple[str, str, SpecModel]]:
        """(kind, key, spec) for every definition, kinds and keys in sorted order."""
        for kind in sorted(self.definitions):
            for key in sorted(self.definitions[kind]):
                yield kind, key, self.definitions[kind][key]

    def counts(self) -> dict[str, int]:
        """Number of definitions per kind."""
        return {kind: len(specs) for kind, specs in sorted(self.definitions.items())}


__all__ = ["Bundle"]

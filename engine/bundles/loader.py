"""`load_bundle`: read, parse and validate a whole bundle, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import engine
from engine.bundles._archive import BundleSource, RawBundle, read_source
from engine.bundles.bundle import Bundle
from engine.bundles.documents import parse_document, validate_document
from engine.bundles.kinds import (
    DEFAULT_KINDS,
    DEFINITION_SUFFIXES,
    MANIFEST_NAMES,
    OPAQUE_FILES,
    OPAQUE_FOLDERS,
    KindRegistry,
)
from engine.bundles.limits import DEFAULT_LIMITS, BundleLimits
from engine.bundles.manifest import BundleManifest
from engine.bundles.semantics import BundleView, check_semantics
from engine.bundles.versions import parse_range
from engine.errors import DefinitionError, Problem
from engine.spec_base import SpecModel


@dataclass(slots=True)
class _Layout:
    """A bundle's files sorted by role."""

    manifests: list[str] = field(default_factory=list)
    definitions: dict[str, list[str]] = field(default_factory=dict)
    opaque: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _classify(names: list[str], kinds: KindRegistry) -> _Layout:
    layout = _Layout(definitions={kind: [] for kind in kinds})
    for name in sorted(names):
        parts = PurePosixPath(name).parts
        if name in MANIFEST_NAMES:
            layout.manifests.append(name)
        elif name in OPAQUE_FILES or parts[0] in OPAQUE_FOLDERS:
            layout.opaque.append(name)
        elif len(parts) == 2 and parts[0] in kinds and name.endswith(DEFINITION_SUFFIXES):
            layout.definitions[parts[0]].append(name)
        else:
            layout.unexpected.append(name)
    layout.manifests.sort(key=MANIFEST_NAMES.index)
    return layout


def _unexpected(name: str, kinds: KindRegistry) -> Problem:
    folders = ", ".join([*kinds, *OPAQUE_FOLDERS])
    return Problem(
        "bundle.unexpected-file",
        "",
        "this file has no place in a bundle",
        hint=f"definitions go in {folders} as .yaml, .yml or .json; see docs/bundles.md",
        source=name,
    )


def _engine_problems(manifest: BundleManifest, name: str, engine_version: str) -> list[Problem]:
    if parse_range(manifest.engine).contains(engine_version):
        return []
    return [
        Problem(
            "bundle.engine-version",
            "/engine",
            f"bundle needs engine {manifest.engine}; this is engine {engine_version}",
            hint="upgrade Tangram, or install a version of the bundle made for this engine",
            source=name,
        )
    ]


def _load_manifest(
    raw: RawBundle, layout: _Layout, limits: BundleLimits, engine_version: str
) -> tuple[BundleManifest | None, list[Problem]]:
    if not layout.manifests:
        return None, [
            Problem("bundle.missing-manifest", "", "no bundle.yaml", hint="add bundle.yaml")
        ]
    name = layout.manifests[0]
    extra = [
        Problem("bundle.duplicate-manifest", "", "a bundle has one manifest", source=other)
        for other in layout.manifests[1:]
    ]
    value, problems = parse_document(name, raw.files[name], limits)
    if problems:
        return None, extra + problems
    manifest, problems = validate_document(BundleManifest, name, value)
    if manifest is None:
        return None, extra + problems
    return manifest, extra + _engine_problems(manifest, name, engine_version)


def _load_definition(
    model: type[SpecModel], name: str, data: bytes, limits: BundleLimits
) -> tuple[SpecModel | None, list[Problem]]:
    value, problems = parse_document(name, data, limits)
    if problems:
        return None, problems
    spec, problems = validate_document(model, name, value)
    stem = PurePosixPath(name).stem
    key = value.get("key") if isinstance(value, dict) else None
    if isinstance(key, str) and key != stem:
        problems.append(
            Problem(
                "bundle.key-mismatch",
                "/key",
                f"key {key!r} does not match the file name {stem!r}",
                hint=f"rename the file to {key}{PurePosixPath(name).suffix} or set key: {stem}",
                source=name,
            )
        )
        return None, problems
    return spec, problems


@dataclass(slots=True)
class _Collected:
    definitions: dict[str, dict[str, SpecModel]]
    sources: dict[tuple[str, str], str]
    present: dict[str, set[str]]
    problems: list[Problem]


def _load_definitions(
    raw: RawBundle, layout: _Layout, kinds: KindRegistry, limits: BundleLimits
) -> _Collected:
    out = _Collected({}, {}, {}, [])
    for kind, names in layout.definitions.items():
        out.definitions[kind], out.present[kind] = {}, set()
        for name in names:
            stem = PurePosixPath(name).stem
            if stem in out.present[kind]:
                out.problems.append(_duplicate(kind, stem, name))
                continue
            out.present[kind].add(stem)
            spec, problems = _load_definition(kinds[kind], name, raw.files[name], limits)
            out.problems.extend(problems)
            if spec is not None:
                out.definitions[kind][stem] = spec
                out.sources[(kind, stem)] = name
    return out


def _duplicate(kind: str, key: str, name: str) -> Problem:
    return Problem(
        "bundle.duplicate-definition",
        "",
        f"{kind} already has a definition {key!r} in another file",
        hint="keep one file per key",
        source=name,
    )


def load_bundle(
    source: BundleSource,
    *,
    kinds: KindRegistry = DEFAULT_KINDS,
    limits: BundleLimits = DEFAULT_LIMITS,
    engine_version: str | None = None,
) -> Bundle:
    """Load a bundle folder, zip file, zip bytes or zip stream, validated in full.

    Args:
        kinds: folder name → spec model; the default covers every engine.
        engine_version: the version the manifest's `engine` range is checked against
            (default: `engine.__version__`).

    Raises:
        DefinitionError: with every problem found, each located by file and JSON pointer.
    """
    raw = read_source(source, limits)
    if raw.fatal:
        raise DefinitionError(raw.problems)
    layout = _classify(list(raw.files), kinds)
    problems = list(raw.problems)
    problems.extend(_unexpected(name, kinds) for name in layout.unexpected)
    manifest, manifest_problems = _load_manifest(
        raw, layout, limits, engine_version or engine.__version__
    )
    problems.extend(manifest_problems)
    collected = _load_definitions(raw, layout, kinds, limits)
    problems.extend(collected.problems)
    files = {name: raw.files[name] for name in layout.opaque}
    view = BundleView(collected.definitions, collected.sources, files, collected.present, limits)
    problems.extend(check_semantics(view, kinds))
    if problems or manifest is None:
        raise DefinitionError(problems)
    return Bundle(
        manifest=manifest,
        definitions=collected.definitions,
        sources=collected.sources,
        files=files,
    )


def is_bundle_folder(path: Path) -> bool:
    """True when `path` is a folder holding a bundle manifest."""
    return any((path / name).is_file() for name in MANIFEST_NAMES)


__all__ = ["is_bundle_folder", "load_bundle"]

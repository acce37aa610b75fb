"""Bundles (template packs): a folder or zip of definitions with a `bundle.yaml` manifest.

`load_bundle` reads and validates one, reporting every problem at once; `dump_bundle` writes
its canonical form; `check_bundle` validates without a database.
"""

from engine.bundles._archive import BundleSource
from engine.bundles.bundle import Bundle
from engine.bundles.check import CheckReport, check_bundle, format_problem, format_problems
from engine.bundles.documents import parse_document, validate_document
from engine.bundles.dump import (
    Format,
    canonical_definition,
    definition_digest,
    dump_bundle,
    render_bundle,
    zip_bundle,
)
from engine.bundles.kinds import DEFAULT_KINDS, KindRegistry, LazyKinds
from engine.bundles.limits import DEFAULT_LIMITS, BundleLimits
from engine.bundles.loader import is_bundle_folder, load_bundle
from engine.bundles.manifest import BundleDependency, BundleManifest
from engine.bundles.versions import Version, VersionRange, parse_range, parse_version

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_LIMITS",
    "Bundle",
    "BundleDependency",
    "BundleLimits",
    "BundleManifest",
    "BundleSource",
    "CheckReport",
    "Format",
    "KindRegistry",
    "LazyKinds",
    "Version",
    "VersionRange",
    "canonical_definition",
    "check_bundle",
    "definition_digest",
    "dump_bundle",
    "format_problem",
    "format_problems",
    "is_bundle_folder",
    "load_bundle",
    "parse_document",
    "parse_range",
    "parse_version",
    "render_bundle",
    "validate_document",
    "zip_bundle",
]

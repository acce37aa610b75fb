"""`bundle.yaml`: the manifest naming a bundle, its version and what it requires."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from engine.bundles.versions import parse_range, parse_version
from engine.labels import Label
from engine.spec_base import Key, SpecModel

MANIFEST_SCHEMA_VERSION = 1


def _check_range(value: str) -> str:
    parse_range(value)
    return value


class BundleDependency(SpecModel):
    """Another bundle this one needs installed, with the versions it accepts."""

    key: Key
    version: str = "*"

    @field_validator("version")
    @classmethod
    def _version_range(cls, value: str) -> str:
        return _check_range(value)


class BundleManifest(SpecModel):
    """The manifest: identity, semantic version, required engine versions, dependencies."""

    schema_version: Annotated[int, Field(ge=1, le=MANIFEST_SCHEMA_VERSION)] = (
        MANIFEST_SCHEMA_VERSION
    )
    key: Key
    name: Label
    version: str = Field(description="Semantic version of the bundle, e.g. 0.1.0")
    engine: str = Field(default="*", description="Engine versions supported, e.g. >=0.1,<1.0")
    description: Label | None = None
    dependencies: list[BundleDependency] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    license: str | None = None

    @field_validator("version")
    @classmethod
    def _semantic_version(cls, value: str) -> str:
        parse_version(value)
        return value

    @field_validator("engine")
    @classmethod
    def _engine_range(cls, value: str) -> str:
        return _check_range(value)


__all__ = ["MANIFEST_SCHEMA_VERSION", "BundleDependency", "BundleManifest"]

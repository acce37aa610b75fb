"""What an administrator publishes: which fields a public link shows, fills and tracks.

Pure models (no I/O); `engine.public.service` checks them against the form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from engine.spec_base import Key

Param = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PrefillSpec(_Model):
    """A field filled for the submitter: a fixed `value` or the query parameter `param`.

    A `readonly` prefill wins over anything submitted; otherwise it is only the initial value.
    """

    value: Any = None
    param: Param | None = None
    readonly: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> PrefillSpec:
        if (self.value is None) == (self.param is None):
            raise ValueError("give exactly one of `value` and `param`")
        return self


class LookupSpec(_Model):
    """Find the related record whose `by` field equals query parameter `param` (a device by
    its QR token), set `relation` to it and copy `copy` ({field: target field}) from it; all
    read-only."""

    relation: Key
    by: Key
    param: Param
    copy_fields: dict[Key, Key] = Field(default_factory=dict, alias="copy")


class LimitsSpec(_Model):
    """Submissions per client address and per link in each window, and the body size."""

    per_client: int = Field(10, ge=1, le=100_000)
    per_link: int = Field(1000, ge=1, le=10_000_000)
    window_seconds: int = Field(3600, ge=10, le=7 * 86400)
    max_body_bytes: int = Field(64 * 1024, ge=256, le=1024 * 1024)


UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf")


class UploadsSpec(_Model):
    """Files an anonymous submitter may attach: to which image/attachment fields of the link,
    how many per field, how large, of which types (recognised from the bytes, not the name),
    and how many uploads per client address in the link's window."""

    fields: list[Key] = Field(min_length=1, max_length=20)
    max_files: int = Field(5, ge=1, le=50)
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    types: list[Literal[UPLOAD_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(UPLOAD_TYPES[:4]), min_length=1
    )
    per_client: int = Field(30, ge=1, le=10_000)


class PublicLinkSpec(_Model):
    """A form published as a public link."""

    label: str | None = Field(None, max_length=200)
    fields: list[Key] = Field(min_length=1, max_length=200)
    prefill: dict[Key, PrefillSpec] = Field(default_factory=dict)
    lookup: LookupSpec | None = None
    trackable: list[Key] = Field(default_factory=list, max_length=200)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    uploads: UploadsSpec | None = None
    enabled: bool = True
    expires_at: datetime | None = None

    def options(self) -> dict[str, Any]:
        """What the link row stores besides its label, state and expiry."""
        return self.model_dump(
            mode="json",
            by_alias=True,
            include=set(SPEC_KEYS),
        )


SPEC_KEYS = ("fields", "prefill", "lookup", "trackable", "limits", "uploads")


def link_spec(options: dict[str, Any]) -> PublicLinkSpec:
    """The link model of a stored link's `options` (which may also carry bookkeeping keys such
    as `bundle_key`)."""
    return PublicLinkSpec.model_validate({k: v for k, v in options.items() if k in SPEC_KEYS})


class BundleLinkSpec(PublicLinkSpec):
    """A public link declared in a form definition (`public: links:`); `key` names it inside
    the form, so a re-import updates the same link and keeps its address."""

    key: Key


class FormPublicLinks(_Model):
    """The `public:` block of a form: the links each bundle import publishes or updates; a link
    that leaves the block is disabled (docs/public-links.md)."""

    links: tuple[BundleLinkSpec, ...] = Field((), max_length=20)

    @model_validator(mode="after")
    def _unique_keys(self) -> FormPublicLinks:
        keys = [link.key for link in self.links]
        if len(keys) != len(set(keys)):
            raise ValueError("two public links share a key")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field key the links name (the form compiler checks that each exists)."""
        keys: list[str] = []
        for link in self.links:
            keys += [*link.fields, *link.prefill, *link.trackable]
            if link.lookup is not None:
                keys += [link.lookup.relation, *link.lookup.copy_fields]
        return tuple(dict.fromkeys(keys))


__all__ = [
    "BundleLinkSpec",
    "FormPublicLinks",
    "LimitsSpec",
    "LookupSpec",
    "PrefillSpec",
    "PublicLinkSpec",
    "SPEC_KEYS",
    "UPLOAD_TYPES",
    "UploadsSpec",
    "link_spec",
]

"""`DefinitionRegistry`: compiled definitions of installed apps, cached by version and digest.

The database is the source of truth, so several processes can share it: each lookup reads the
app's current form digests (one cheap query, plus the bundle's file list for shared option
sets) and compiles only what this process has not seen. The app owns the registry
(`app.state`); there is no module-level cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from engine.errors import NotFoundError
from engine.forms.compiler import CompiledForm, compile_form
from engine.forms.spec import FormSpec, OptionSetsFile, OptionSetSpec

if TYPE_CHECKING:
    from engine.storage.uow import UnitOfWork

FORMS = "forms"
OPTION_SETS_FILE = "data/option_sets.yaml"
FORM_NOT_FOUND = "record.form-not-found"


@dataclass(frozen=True, slots=True, eq=False)
class FormDefinition:
    """A compiled form with what it was compiled against; compared and hashed by identity.

    `fingerprint` changes whenever any form of the app or the shared option sets change, since
    relations, lookups and rollups read the other forms.
    """

    app: str
    key: str
    version: int
    digest: str
    fingerprint: str
    compiled: CompiledForm
    forms: Mapping[str, FormSpec]
    option_sets: Mapping[str, OptionSetSpec] | None


@dataclass(frozen=True, slots=True)
class _AppState:
    versions: dict[str, tuple[int, str]]  # form key → (version, digest)
    option_sets_digest: str | None

    @property
    def fingerprint(self) -> str:
        text = repr((sorted(self.versions.items()), self.option_sets_digest))
        return hashlib.sha256(text.encode()).hexdigest()


class DefinitionRegistry:
    """Loads forms from the `DefinitionStore` of a unit of work and keeps them compiled."""

    def __init__(self, *, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._compiled: OrderedDict[tuple[str, ...], FormDefinition] = OrderedDict()
        self._specs: dict[tuple[str, str, int, str], FormSpec] = {}
        self._option_sets: dict[str, Mapping[str, OptionSetSpec]] = {}

    def form(self, uow: UnitOfWork, *, app: str, key: str) -> FormDefinition:
        """The current version of form `key` of `app`, compiled.

        Raises:
            NotFoundError: `record.form-not-found` when the app has no such (live) form.
            DefinitionError: the stored definition no longer compiles.
        """
        state = _read_state(uow, app)
        found = state.versions.get(key)
        if found is None:
            raise NotFoundError(f"app {app!r} has no form {key!r}", code=FORM_NOT_FOUND)
        cache_key = (app, FORMS, key, str(found[0]), found[1], state.fingerprint)
        with self._lock:
            cached = self._compiled.get(cache_key)
            if cached is not None:
                self._compiled.move_to_end(cache_key)
                return cached
        definition = self._compile(uow, app, key, state)
        with self._lock:
            self._compiled[cache_key] = definition
            while len(self._compiled) > self._max_entries:
                self._compiled.popitem(last=False)
        return definition

    def clear(self) -> None:
        with self._lock:
            self._compiled.clear()
            self._specs.clear()
            self._option_sets.clear()

    def _compile(self, uow: UnitOfWork, app: str, key: str, state: _AppState) -> FormDefinition:
        forms = {name: self._spec(uow, app, name, *vd) for name, vd in state.versions.items()}
        option_sets = self._shared_option_sets(uow, app, state.option_sets_digest)
        compiled = compile_form(forms[key], forms=forms, option_sets=option_sets)
        version, digest = state.versions[key]
        return FormDefinition(
            app=app,
            key=key,
            version=version,
            digest=digest,
            fingerprint=state.fingerprint,
            compiled=compiled,
            forms=MappingProxyType(forms),
            option_sets=option_sets,
        )

    def _spec(self, uow: UnitOfWork, app: str, key: str, version: int, digest: str) -> FormSpec:
        cache_key = (app, key, version, digest)
        spec = self._specs.get(cache_key)
        if spec is None:
            body = uow.definitions.get_version(app=app, kind=FORMS, key=key, version=version).body
            spec = FormSpec.model_validate(body)
            self._specs[cache_key] = spec
        return spec

    def _shared_option_sets(
        self, uow: UnitOfWork, app: str, digest: str | None
    ) -> Mapping[str, OptionSetSpec] | None:
        if digest is None:
            return None
        found = self._option_sets.get(digest)
        if found is None:
            content = uow.bundle_files.get(app=app, path=OPTION_SETS_FILE).content or b""
            parsed = OptionSetsFile.model_validate(_yaml(content))
            found = MappingProxyType({s.key: s for s in parsed.option_sets})
            self._option_sets[digest] = found
        return found


def _yaml(content: bytes) -> Any:
    return yaml.safe_load(content.decode("utf-8"))


def _read_state(uow: UnitOfWork, app: str) -> _AppState:
    records = uow.definitions.list_definitions(app=app, kind=FORMS)
    versions = {r.key: (r.current_version, r.current_digest) for r in records}
    files = uow.bundle_files.list_files(app=app) if versions else []
    digest = next((f.digest for f in files if f.path == OPTION_SETS_FILE), None)
    return _AppState(versions=versions, option_sets_digest=digest)


__all__ = ["FORM_NOT_FOUND", "DefinitionRegistry", "FormDefinition"]

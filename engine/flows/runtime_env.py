"""`FlowEnvironment`: what a flow step needs besides the unit of work — compiled flows, the
record writer's kit and the task service — shared by every step of one process.

Entry points that only receive a unit of work (`runtime.resume_token`, job handlers, record
listeners) find it through `environment()`; the app installs its own with `use_environment`
so flow writes fire the app's record listeners.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import DefinitionError, NotFoundError
from engine.flows.assign_checks import form_fields_of
from engine.flows.checks import FLOW_VARIABLES, FlowContext
from engine.flows.compiler import CompiledFlow, compile_flow
from engine.flows.refs import InstanceRef, TaskOpening
from engine.flows.spec import FlowSpec, UserTaskNode
from engine.forms._catalog import build_catalog
from engine.registry import DefinitionRegistry
from engine.storage.sqltypes import utc_now

if TYPE_CHECKING:
    from engine.forms.events import ChangeListener
    from engine.forms.record_writer import FormKit
    from engine.storage.form_records import StoredRecord
    from engine.storage.uow import UnitOfWork

FLOWS = "flows"
FLOW_NOT_FOUND = "flow.not-found"


class TaskPort(Protocol):
    """The task service as the runtime calls it (engine/flows/tasks.py)."""

    def open_node_tasks(
        self,
        uow: UnitOfWork,
        *,
        instance: InstanceRef,
        token_id: int,
        node: UserTaskNode,
        record: StoredRecord | None,
        now: datetime,
    ) -> TaskOpening: ...

    def cancel_node_tasks(self, uow: UnitOfWork, *, token_id: int, reason: str) -> None: ...


class _TaskModule:
    """The real task service, imported on first use (it imports the runtime back)."""

    def open_node_tasks(self, uow: UnitOfWork, **kwargs: Any) -> TaskOpening:
        from engine.flows import tasks

        opening: TaskOpening = tasks.open_node_tasks(uow, **kwargs)
        return opening

    def cancel_node_tasks(self, uow: UnitOfWork, *, token_id: int, reason: str) -> None:
        from engine.flows import tasks

        tasks.cancel_node_tasks(uow, token_id=token_id, reason=reason)


@dataclass(frozen=True, slots=True)
class FlowVersion:
    app: str
    key: str
    version: int
    compiled: CompiledFlow
    retired: bool = False

    @property
    def form(self) -> str | None:
        spec = self.compiled.spec
        return spec.form or spec.trigger.form


class FlowEnvironment:
    """Compiled flows cached by (app, key, version, digest); the record kit; the task port."""

    def __init__(
        self,
        *,
        registry: DefinitionRegistry | None = None,
        listeners: Sequence[ChangeListener] | None = None,
        tasks: TaskPort | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.registry = registry or DefinitionRegistry()
        self.listeners: Sequence[ChangeListener] = (
            listeners if listeners is not None else _default_listeners()
        )
        self.tasks: TaskPort = tasks or _TaskModule()
        self.clock = clock
        self._kit: FormKit | None = None
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, str, int, str], CompiledFlow] = {}

    @property
    def kit(self) -> FormKit:
        if self._kit is None:
            from engine.forms.record_writer import FormKit

            self._kit = FormKit(registry=self.registry, clock=self.clock, listeners=self.listeners)
        return self._kit

    def flow(
        self, uow: UnitOfWork, *, app: str, key: str, version: int | None = None
    ) -> FlowVersion:
        """A flow's current version (or `version`), compiled (cached by version and digest).

        Raises:
            NotFoundError: `flow.not-found`.
            DefinitionError: the stored version no longer compiles against its form.
        """
        try:
            row = (
                uow.definitions.get_current(app=app, kind=FLOWS, key=key)
                if version is None
                else uow.definitions.get_version(app=app, kind=FLOWS, key=key, version=version)
            )
        except NotFoundError as err:
            raise NotFoundError(f"app {app!r} has no flow {key!r}", code=FLOW_NOT_FOUND) from err
        compiled = self._compiled_body(uow, app, key, row.version, row.digest, row.body)
        return FlowVersion(app=app, key=key, version=row.version, compiled=compiled)

    def flows(self, uow: UnitOfWork, *, app: str) -> list[FlowVersion]:
        """The current version of every live flow of `app` (ones that fail to compile skipped).

        One query when every current version is compiled already (the usual case on a write).
        """
        found: list[FlowVersion] = []
        for record in uow.definitions.list_definitions(app=app, kind=FLOWS):
            if record.retired:
                continue
            with self._lock:
                cached = self._compiled.get(
                    (app, record.key, record.current_version, record.current_digest)
                )
            try:
                compiled = cached or self.flow(uow, app=app, key=record.key).compiled
            except (DefinitionError, NotFoundError):
                continue
            version = record.current_version
            found.append(FlowVersion(app=app, key=record.key, version=version, compiled=compiled))
        return found

    def _compiled_body(
        self, uow: UnitOfWork, app: str, key: str, version: int, digest: str, body: Any
    ) -> CompiledFlow:
        cache_key = (app, key, version, digest)
        with self._lock:
            found = self._compiled.get(cache_key)
        if found is None:
            found = self.compile(uow, app=app, spec=FlowSpec.model_validate(body))
            with self._lock:
                self._compiled[cache_key] = found
        return found

    def compile(
        self, uow: UnitOfWork, *, app: str, spec: FlowSpec, drafts: bool = False
    ) -> CompiledFlow:
        """`drafts`: also check the fields of the other forms the flow's actions read; a stored
        version is compiled without, so a rules form changed after publish is a run-time error on
        the instance rather than a flow that silently stops starting."""
        return compile_flow(spec, ctx=self.context(uow, app=app, spec=spec, drafts=drafts))

    def context(
        self, uow: UnitOfWork, *, app: str, spec: FlowSpec, drafts: bool = False
    ) -> FlowContext:
        """What the static checks know of `app` when compiling `spec` inside it."""
        forms = frozenset(r.key for r in uow.definitions.list_definitions(app=app, kind="forms"))
        flows = frozenset(r.key for r in uow.definitions.list_definitions(app=app, kind=FLOWS))
        form_key = spec.form or spec.trigger.form
        catalog = None
        form_fields = None
        if form_key is not None and "." not in form_key and form_key in forms:
            definition = self.registry.form(uow, app=app, key=form_key)
            catalog = {**build_catalog(FLOW_VARIABLES), **definition.compiled.catalog}
            if drafts:  # the app's other forms: rules and directory forms that actions read
                form_fields = form_fields_of(definition.forms.values())
        return FlowContext(
            catalog=catalog, forms=forms, flows=flows | {spec.key}, form_fields=form_fields
        )


def _default_listeners() -> list[ChangeListener]:
    from engine.flows.triggers import FlowTriggers

    return [FlowTriggers()]


_current: FlowEnvironment | None = None
_current_lock = threading.Lock()


def environment() -> FlowEnvironment:
    """The process's flow environment (a default one until the app installs its own)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = FlowEnvironment()
        return _current


def use_environment(env: FlowEnvironment | None) -> None:
    """Install `env` for this process (None: back to a fresh default on next use)."""
    global _current
    with _current_lock:
        _current = env


__all__ = [
    "FLOWS",
    "FLOW_NOT_FOUND",
    "FlowEnvironment",
    "FlowVersion",
    "TaskPort",
    "environment",
    "use_environment",
]

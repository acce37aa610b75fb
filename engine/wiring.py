"""How the engines are put together in one process: the record listeners every write fires and
the services they need, built the same way by the API and by `tangram worker`.

Writes made by the worker (timers, flow actions, SLA escalations) must fire exactly the
listeners the API's writes fire, so both build them here rather than each in its own place.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from engine.flows.sla_service import SlaService
from engine.flows.triggers import install_flow_triggers
from engine.forms.events import ChangeListener
from engine.forms.record_audit import audit_record_change
from engine.forms.service import RecordService
from engine.identity.relation_scope import RelationScopeGuard
from engine.jobs.types import JobHandler
from engine.registry import DefinitionRegistry
from engine.reports.cache import DataVersionBumper


@dataclass(frozen=True, slots=True)
class Engines:
    """The services of one process, sharing one list of record listeners."""

    registry: DefinitionRegistry
    listeners: list[ChangeListener]
    records: RecordService
    sla: SlaService


def build_engines(db: sa.Engine, *, registry: DefinitionRegistry | None = None) -> Engines:
    """Wire the listeners in their order: guards first (they may refuse the write), then the
    reactions (audit, flows, SLA), then cache invalidation, which must see every write."""
    registry = registry or DefinitionRegistry()
    listeners: list[ChangeListener] = []
    records = RecordService(db=db, registry=registry, listeners=listeners)
    sla = SlaService(records, registry)
    listeners.append(RelationScopeGuard(registry))  # relations only to readable records
    listeners.append(audit_record_change)  # record.delete / record.restore
    install_flow_triggers(listeners)  # flows start on record changes; flow writes fire the list
    listeners.append(sla)  # SLA fields (amending the write) and wake-up jobs
    listeners.append(DataVersionBumper())  # report cache invalidation
    engines = Engines(registry=registry, listeners=listeners, records=records, sla=sla)
    _use(engines)
    return engines


_current: Engines | None = None
_lock = threading.Lock()


def _use(engines: Engines) -> None:
    global _current
    with _lock:
        _current = engines


def current_engines() -> Engines | None:
    """The engines the process built last (job providers find their services here)."""
    with _lock:
        return _current


def sla_job_handlers() -> Mapping[str, JobHandler]:
    """Job provider for SLA wake-ups; needs `build_engines` to have run in this process."""
    from engine.flows.sla_jobs import job_handlers

    engines = current_engines()
    if engines is None:
        raise RuntimeError("build_engines() must run before the worker collects SLA handlers")
    return job_handlers(engines.sla)


__all__ = ["Engines", "build_engines", "current_engines", "sla_job_handlers"]

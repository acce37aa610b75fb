"""Where the worker finds job handlers: provider modules named by dotted path.

A provider is a module-level function `job_handlers() -> Mapping[str, JobHandler]`. Providers
are imported lazily when a worker starts, so an engine that is not installed (yet) is skipped
with a log line instead of breaking every worker; so is a provider that raises (logged as an
error). Jobs of a skipped provider's kinds then fail visibly with `job.no-handler`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping

from engine.jobs.types import JobHandler

log = logging.getLogger(__name__)

PROVIDERS: tuple[str, ...] = (
    "engine.jobs.retention:job_handlers",
    "engine.outbox.handlers:job_handlers",
    "engine.flows.jobs:job_handlers",
    "engine.flows.task_jobs:job_handlers",
    "engine.wiring:sla_job_handlers",
    "engine.reports.alerts:job_handlers",
    "engine.reports.snapshots:job_handlers",
    "engine.reports.delivery_mail:job_handlers",
    "engine.public.answer_mail:job_handlers",
)


def _load(spec: str) -> Callable[[], Mapping[str, JobHandler]] | None:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is None or not module_name.startswith(err.name):
            raise  # the provider exists but one of its own imports is missing: a real bug
        log.info("job provider %s is not installed: skipped", module_name)
        return None
    provider: Callable[[], Mapping[str, JobHandler]] = getattr(module, attribute or "job_handlers")
    return provider


def collect_handlers(providers: Iterable[str] = PROVIDERS) -> dict[str, JobHandler]:
    """The handlers of every available provider, by job kind; a kind claimed twice is an error."""
    handlers: dict[str, JobHandler] = {}
    for spec in providers:
        provider = _load(spec)
        if provider is None:
            continue
        try:
            provided = provider()
        except Exception:  # one broken engine must not stop the jobs of all the others
            log.exception("job provider %s failed: its job kinds have no handler", spec)
            continue
        for kind, handler in provided.items():
            if kind in handlers:
                raise RuntimeError(f"job kind {kind!r} has two handlers (second from {spec})")
            handlers[kind] = handler
    return handlers


__all__ = ["PROVIDERS", "collect_handlers"]

"""The app's business calendars for reports that call `WORKTIMEADD`, with a digest of their
versions: a calendar change is a new compiled report and a new result cache key."""

from __future__ import annotations

from engine.flows.sla_store import CALENDARS, SlaDefinitions
from engine.reports.spec import ReportSpec
from engine.reports.worktime import NO_CALENDARS, Calendars, uses_worktime
from engine.storage.uow import UnitOfWork


class ReportCalendars:
    """Loads (and compiles once per version) the calendars a report's expressions need."""

    def __init__(self) -> None:
        self._definitions = SlaDefinitions()

    def for_report(self, uow: UnitOfWork, *, app: str, spec: ReportSpec) -> Calendars:
        """The app's calendars when `spec` calls `WORKTIMEADD`, else none (no query)."""
        if not uses_worktime(spec.model_dump_json()):
            return NO_CALENDARS
        records = uow.definitions.list_definitions(app=app, kind=CALENDARS)
        digest = ";".join(f"{r.key}:{r.current_digest}" for r in records)
        return Calendars(self._definitions.calendars(uow, app=app), digest)


__all__ = ["ReportCalendars"]

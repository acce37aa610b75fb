"""Former name of the report run path, kept so that existing imports keep working.

There is one way to run a report: `engine.reports.service.ReportService` (cache, permissions,
data versions, compare and drill in one path). `CachedRuns` is the same class.
"""

from __future__ import annotations

from engine.reports.runs import Run, run_in_threads
from engine.reports.service import REPORT_KIND, ReportService

CachedRuns = ReportService

__all__ = ["REPORT_KIND", "CachedRuns", "Run", "run_in_threads"]

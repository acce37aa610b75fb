"""The report engine: report and dashboard definitions."""

from engine.reports.spec import DashboardSpec, ReportSpec

__all__ = ["DashboardSpec", "ReportSpec"]

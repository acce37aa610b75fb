"""What one recipient's copy of a scheduled delivery holds: the summary widgets and the
attached files, every widget run as that recipient.

The recipient's own row scope, field masks and export permission apply, as on the dashboard
they would open: a widget they may not read (or export, for an attachment) is left out with
a note instead of failing the whole mail. Running as the definition's author would mail
rows to people who may not see them, so there is no such option.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import DefinitionError, PermissionDenied
from engine.forms.record_access import Who
from engine.labels import label_text
from engine.reports.charts_data import category_label, json_cell
from engine.reports.dashboard import widget_filters
from engine.reports.dashboard_service import DashboardService
from engine.reports.export import export_compiled
from engine.reports.query import FilterClause
from engine.reports.runs import Run
from engine.reports.service import ReportService
from engine.reports.spec import Delivery, DeliveryAttachment, ReportSpec, Widget
from engine.storage.uow import UnitOfWork

TABLE_ROWS = 20  # rows of a non-card widget shown in the mail (the attachment has them all)


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """A widget in the mail: a card (`value`, `previous`, `small`) or the first table rows."""

    title: str
    value: Any = None
    previous: Any = None
    small: bool = False
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    file_name: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class DeliveryContent:
    subject: str
    day: date
    items: tuple[SummaryItem, ...]
    attachments: tuple[Attachment, ...]
    notes: tuple[str, ...]  # widgets left out, and why


def compose_delivery(
    runs: ReportService,
    uow: UnitOfWork,
    *,
    app: str,
    dashboard: str,
    delivery: Delivery,
    actor: Who,
) -> DeliveryContent:
    """Run the delivery's summary widgets and attachments for `actor` at `runs`' clock.

    Raises:
        NotFoundError, DefinitionError: the dashboard is gone or no longer fits its app.
        ReportQueryError: a filter value of the delivery that does not fit.
    """
    spec, reports = DashboardService(runs).checked(uow, app=app, key=dashboard)
    zone = delivery.schedule.timezone
    day = runs.clock().astimezone(ZoneInfo(zone)).date()
    filters = widget_filters(spec, reports=reports, values=delivery.filters, today=day)
    widgets = {w.key: w for w in spec.widgets}
    shown = delivery.summary
    if shown is None:
        shown = tuple(w.key for w in spec.widgets if w.card is not None)
    items: list[SummaryItem] = []
    notes: list[str] = []
    for key in shown:
        widget = widgets.get(key)
        if widget is None:  # the bundle check reports it; an old installed version may not
            notes.append(f"{key}: left out (no such widget)")
            continue
        try:
            items.append(_summary(runs, uow, app, widget, reports[widget.report],
                                  filters[key], actor, zone))  # fmt: skip
        except (PermissionDenied, DefinitionError) as err:
            notes.append(f"{_title(widget, reports)}: left out ({err.code})")
    files: list[Attachment] = []
    for attachment in delivery.attachments:
        widget = widgets.get(attachment.widget)
        if widget is None:
            notes.append(f"{attachment.widget}: left out (no such widget)")
            continue
        try:
            files.append(_file(runs, uow, app, attachment, reports[widget.report],
                               filters[widget.key], actor, zone))  # fmt: skip
        except (PermissionDenied, DefinitionError) as err:
            notes.append(f"{_title(widget, reports)} ({attachment.format}): left out ({err.code})")
    subject = f"{label_text(delivery.label)}: {label_text(spec.label)} {day.isoformat()}"
    return DeliveryContent(subject, day, tuple(items), tuple(files), tuple(notes))


def _title(widget: Widget, reports: dict[str, ReportSpec]) -> str:
    label = widget.title if widget.title is not None else reports[widget.report].label
    return label_text(label)


def _summary(
    runs: ReportService,
    uow: UnitOfWork,
    app: str,
    widget: Widget,
    report: ReportSpec,
    filters: list[FilterClause],
    actor: Who,
    zone: str,
) -> SummaryItem:
    compiled = runs.compile(uow, app=app, spec=widget.applied_to(report), timezone=zone)
    result, _ = runs.result(uow, compiled, actor=actor, run=Run(tuple(filters)))
    title = _title(widget, {report.key: report})
    if widget.card is None:
        columns = tuple(c.label for c in result.columns)
        rows = tuple(tuple(category_label(v) for v in row) for row in result.rows[:TABLE_ROWS])
        return SummaryItem(title, columns=columns, rows=rows)
    index = result.index(widget.card)
    value = json_cell(result.rows[0][index]) if result.rows else None
    previous = json_cell(result.compare[0][index]) if result.compare else None
    small = 0 in result.meta.get("small_sample", {}).get("rows", [])
    return SummaryItem(title, value=value, previous=previous, small=small)


def _file(
    runs: ReportService,
    uow: UnitOfWork,
    app: str,
    attachment: DeliveryAttachment,
    report: ReportSpec,
    filters: list[FilterClause],
    actor: Who,
    zone: str,
) -> Attachment:
    compiled = runs.compile(uow, app=app, spec=report, timezone=zone)
    exported = export_compiled(
        runs, compiled, actor=actor, file_format=attachment.format, filters=filters
    )
    file_name = f"{attachment.widget}.{attachment.format}"
    return Attachment(file_name, exported.media_type, b"".join(exported.chunks))


__all__ = ["Attachment", "DeliveryContent", "SummaryItem", "compose_delivery"]

"""Report and dashboard definitions: a query over a form's dataset, a chart, and a widget grid.

The report engine compiles a `ReportSpec` to one SQL statement; these models fix the format.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from engine.forms.fields import Expr, FormRef
from engine.labels import Label
from engine.spec_base import Key, SpecModel

REPORT_SCHEMA_VERSION = 1
DASHBOARD_SCHEMA_VERSION = 1

FieldPath = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
        description="A field of the dataset: `priority`, or through a join `customer.tier`",
    ),
]


class Join(SpecModel):
    """Follow a relation or subform of the base form; `alias` names it in field paths."""

    relation: FieldPath
    alias: Key | None = None
    kind: Literal["left", "inner"] = "left"


class Exists(SpecModel):
    """A named test for other rows (docs/reports.md "Other rows: exists"): `where` reads the
    other row as `other.<field>` and this row by plain paths; the key is then a boolean field
    (`result: count`: the number of such rows; `sum`: the sum of `value` over them, 0 if none)."""

    key: Key
    form: FormRef
    joins: tuple[Join, ...] = Field((), description="Joins of the other form (`other.<alias>.…`)")
    where: Expr
    result: Literal["exists", "count", "sum"] = "exists"
    value: Expr | None = Field(None, description="With `result: sum`: the number summed")

    @model_validator(mode="after")
    def _value(self) -> Exists:
        if (self.result == "sum") != (self.value is not None):
            raise PydanticCustomError("report.bad-exists", "give `value` with `result: sum`, only")
        return self


class Dataset(SpecModel):
    form: FormRef
    joins: tuple[Join, ...] = ()
    include_deleted: bool = False
    exists: tuple[Exists, ...] = ()


class Dimension(SpecModel):
    key: Key
    label: Label | None = None
    field: FieldPath | None = None
    expr: Expr | None = None
    grain: Literal["day", "week", "month", "quarter", "year"] | None = None
    buckets: tuple[float, ...] = Field((), description="Upper bounds of numeric buckets")

    @model_validator(mode="after")
    def _source(self) -> Dimension:
        if (self.field is None) == (self.expr is None):
            raise PydanticCustomError("report.dimension-source", "give field or expr, exactly one")
        return self


Aggregate = Literal["count", "count_distinct", "sum", "avg", "min", "max", "median", "p90"]


class Measure(SpecModel):
    """An aggregate, or `expr` over other measures (ratios), e.g. `met / (met + breached)`."""

    key: Key
    label: Label | None = None
    aggregate: Aggregate | None = None
    field: FieldPath | None = None
    value: Expr | None = Field(
        None, description="A per-row expression to aggregate instead of a field"
    )
    filter: Expr | None = Field(None, description="Only rows where this holds (conditional)")
    expr: Expr | None = None
    format: Literal["number", "percent", "money", "duration"] = "number"
    decimals: Annotated[int, Field(ge=0, le=10)] | None = None

    @model_validator(mode="after")
    def _source(self) -> Measure:
        if (self.aggregate is None) == (self.expr is None):
            raise PydanticCustomError(
                "report.measure-source", "give aggregate or expr, exactly one"
            )
        if self.field is not None and self.value is not None:
            raise PydanticCustomError("report.measure-source", "give field or value, not both")
        if self.aggregate not in (None, "count") and self.field is None and self.value is None:
            raise PydanticCustomError("report.measure-source", "this aggregate needs a field")
        return self


class Filter(SpecModel):
    """A condition before (`where`) or after (`having`) aggregation."""

    expr: Expr
    stage: Literal["where", "having"] = "where"


class Sort(SpecModel):
    by: Key
    direction: Literal["asc", "desc"] = "asc"


class Chart(SpecModel):
    type: Literal[
        "kpi",
        "bar",
        "column",
        "line",
        "area",
        "combo",
        "pie",
        "ring",
        "funnel",
        "scatter",
        "heatmap",
        "map",
        "gauge",
        "pivot",
        "table",
    ]
    x: Key | None = None
    y: tuple[Key, ...] = ()
    series: Key | None = None
    stack: Literal["none", "stacked", "percent"] = "none"
    secondary_y: tuple[Key, ...] = ()
    options: dict[str, JsonValue] = Field({}, description="Extra ECharts options, passed as is")


class SmallSample(SpecModel):
    """The n<30 guard: a row whose denominator (the sum of `measures`) is under `below` is
    flagged in the result (`meta.small_sample`), so the UI shows "n<30" and does not colour it."""

    measures: tuple[Key, ...] = Field(min_length=1, description="Measures summed as the n")
    below: Annotated[int, Field(ge=1)] = 30


Compare = Literal["previous_period", "previous_year"]
ProvisionalDays = Annotated[
    int,
    Field(
        ge=1,
        le=366,
        description="A period (or grain bucket) that ended less than this many days ago is "
        "provisional (`meta.provisional`)",
    ),
]


class Snapshot(SpecModel):
    """Append the report's rows to a form once a day, so a trend report can read history
    (e.g. the backlog per team and aging bucket at 23:59). engine/reports/snapshots.py."""

    form: Key = Field(description="Form of the same app that receives the rows")
    at: str = Field(
        "23:59",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time of the daily run, in the report's time zone",
    )
    date_field: Key = Field("snapshot_date", description="Target date field: the local day")
    fields: dict[Key, Key] = Field(
        {}, description="Result column -> target field (default: the column's own key)"
    )


class Population(SpecModel):
    """A further population of a blended report: its own dataset, filters and aggregate
    measures, grouped by the report's dimensions through `fields` (docs/reports.md, blend)."""

    key: Key
    label: Label | None = None
    dataset: Dataset
    filters: tuple[Filter, ...] = ()
    fields: dict[FieldPath, FieldPath | None] = Field(
        {},
        description="Report field path -> this population's field, or null when it has none "
        "(its totals then repeat across that dimension and request filters on it skip it)",
    )
    measures: tuple[Measure, ...] = Field(min_length=1)


class ReportSpec(SpecModel):
    """One query and how to show it."""

    schema_version: Annotated[int, Field(ge=1, le=REPORT_SCHEMA_VERSION)] = REPORT_SCHEMA_VERSION
    key: Key
    label: Label
    description: Label | None = None
    dataset: Dataset
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Measure, ...] = ()
    filters: tuple[Filter, ...] = ()
    sort: tuple[Sort, ...] = ()
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    others: bool = Field(
        False, description="With a limit: the groups past it become one trailing others row"
    )
    compare: Compare | None = None
    small_sample: SmallSample | None = None
    provisional_days: ProvisionalDays | None = None
    snapshot: Snapshot | None = None
    blend: tuple[Population, ...] = Field(
        (), description="Further populations whose measures join the report's groups"
    )
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone of date grains and date filters"
    )
    chart: Chart = Chart(type="table")


class GlobalFilter(SpecModel):
    """A dashboard filter, bound to one field of each widget's dataset."""

    key: Key
    label: Label
    type: Literal["date_range", "select", "multiselect", "text", "user", "department"]
    option_set: Key | None = None
    default: JsonValue = None
    bindings: dict[Key, FieldPath] = Field(
        {}, description="Widget key -> dataset field the filter applies to"
    )


class Widget(SpecModel):
    key: Key
    report: Key
    title: Label | None = None
    x: Annotated[int, Field(ge=0, le=23)]
    y: Annotated[int, Field(ge=0)]
    w: Annotated[int, Field(ge=1, le=24)]
    h: Annotated[int, Field(ge=1, le=48)]
    drill_down: tuple[FieldPath, ...] = Field(
        (), description="Finer dimensions (dataset field paths), then the records"
    )
    links_to: tuple[Key, ...] = Field((), description="Widgets filtered when this one is clicked")
    card: Key | None = Field(
        None,
        description="Show the report as a KPI card of this measure over the whole filtered "
        "population (its dimensions dropped)",
    )
    compare: Compare | None = Field(None, description="Overrides the report's `compare`")
    small_sample: SmallSample | None = Field(None, description="Overrides the report's guard")
    provisional_days: ProvisionalDays | None = Field(
        None, description="Overrides the report's `provisional_days`"
    )

    def applied_to(self, report: ReportSpec) -> ReportSpec:
        """`report` with this widget's card, compare, n<30 guard and provisional window."""
        update: dict[str, object] = {
            key: getattr(self, key)
            for key in ("compare", "small_sample", "provisional_days")
            if getattr(self, key) is not None
        }
        if self.card is not None:
            guard = update.get("small_sample", report.small_sample)
            shown = (self.card,) + (guard.measures if isinstance(guard, SmallSample) else ())
            update |= {
                "dimensions": (),
                "sort": (),
                "limit": None,
                "others": False,
                "chart": Chart(type="kpi", y=tuple(dict.fromkeys(shown))),
            }
        return report.model_copy(update=update) if update else report


class Alert(SpecModel):
    """A threshold alert (数据预警): the worker runs `report` every `every_minutes` and notifies
    when `measure` `op` `threshold` holds for any of its rows."""

    key: Key
    label: Label
    report: Key
    measure: Key
    op: Literal["gt", "gte", "lt", "lte", "eq", "ne"]
    threshold: float
    every_minutes: Annotated[int, Field(ge=5, le=10_080)] = 60
    users: tuple[str, ...] = Field((), description="Usernames to notify")
    roles: tuple[Key, ...] = Field((), description="Roles of the app whose members are notified")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Schedule(SpecModel):
    """When a scheduled job runs: every day, every week on `weekday` or every month on `day`,
    at the local time `at` in `timezone` (engine/reports/schedule.py)."""

    every: Literal["day", "week", "month"]
    at: LocalTime = Field("08:00", description="Local time of the run, HH:MM")
    weekday: Weekday | None = Field(None, description="With `every: week`")
    day: Annotated[int, Field(ge=1, le=31)] | None = Field(
        None, description="With `every: month`; past the month's end, its last day"
    )
    timezone: str = Field("UTC", max_length=64, description="IANA zone of `at`")

    @model_validator(mode="after")
    def _fits(self) -> Schedule:
        if (self.every == "week") != (self.weekday is not None):
            raise PydanticCustomError(
                "report.bad-schedule", "give `weekday` with `every: week`, and only then"
            )
        if (self.every == "month") != (self.day is not None):
            raise PydanticCustomError(
                "report.bad-schedule", "give `day` with `every: month`, and only then"
            )
        return self


class DeliveryAttachment(SpecModel):
    """A widget's rows attached to the mail as a file (needs `export` on its form)."""

    widget: Key
    format: Literal["csv", "xlsx"] = "xlsx"


class Delivery(SpecModel):
    """Scheduled delivery (订阅推送): the dashboard's cards and chosen widgets' rows mailed to
    users on a schedule, every widget run as the recipient (engine/reports/delivery.py)."""

    key: Key
    label: Label
    schedule: Schedule
    users: tuple[str, ...] = Field((), description="Usernames of recipients")
    roles: tuple[Key, ...] = Field((), description="Roles of the app whose members receive it")
    filters: dict[Key, JsonValue] = Field(
        {}, description="Global filter key -> value (others: the filter's default)"
    )
    summary: tuple[Key, ...] | None = Field(
        None, description="Widgets shown in the mail's summary (default: every card widget)"
    )
    attachments: tuple[DeliveryAttachment, ...] = ()

    @model_validator(mode="after")
    def _has_recipients(self) -> Delivery:
        if not self.users and not self.roles:
            raise PydanticCustomError("report.no-recipients", "give `users` or `roles`")
        return self


class DashboardSpec(SpecModel):
    """Widgets on a 24-column grid with shared filters."""

    schema_version: Annotated[int, Field(ge=1, le=DASHBOARD_SCHEMA_VERSION)] = (
        DASHBOARD_SCHEMA_VERSION
    )
    key: Key
    label: Label
    description: Label | None = None
    widgets: tuple[Widget, ...] = ()
    filters: tuple[GlobalFilter, ...] = ()
    refresh_seconds: Annotated[int, Field(ge=10)] | None = None
    alerts: tuple[Alert, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


__all__ = [
    "DASHBOARD_SCHEMA_VERSION",
    "Alert",
    "REPORT_SCHEMA_VERSION",
    "Chart",
    "DashboardSpec",
    "Dataset",
    "Delivery",
    "DeliveryAttachment",
    "Dimension",
    "Exists",
    "Filter",
    "GlobalFilter",
    "Join",
    "Measure",
    "Population",
    "ReportSpec",
    "Schedule",
    "SmallSample",
    "Snapshot",
    "Sort",
    "Widget",
]

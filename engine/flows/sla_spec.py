"""SLA definitions (bundle kind `slas/`): which policy applies to a record, its named clocks and
targets in business minutes, pause and reopen rules, where the results are stored on the record,
and the escalation steps.

`check_sla` checks a definition against its form (fields exist and have the right types,
expressions parse and are boolean, option values exist, exactly one default policy) and reports
every problem at once with its JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from engine.errors import DefinitionError, Problem
from engine.expr import ExpressionError, check, parse
from engine.forms.fields import Expr, FormRef
from engine.labels import Label
from engine.spec_base import Key, SpecModel

if TYPE_CHECKING:
    from engine.bundles.semantics import BundleView
    from engine.forms.compiler import CompiledForm

SLA_SCHEMA_VERSION = 1
Share = Annotated[float, Field(gt=0, lt=1)]
UserPath = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,2}$",
        description="A user field of the record, or one reached through relations (team.manager)",
    ),
]


class ClockFields(SpecModel):
    """Record fields that receive one clock's results (any may be left out)."""

    target: Key | None = Field(None, description="number: the target in business seconds")
    due: Key | None = Field(None, description="datetime: the deadline")
    warn_at: Key | None = Field(None, description="datetime: when the warning fires")
    state: Key | None = Field(None, description="running, warned, paused, met, breached, n_a")
    late: Key | None = Field(None, description="number: business seconds past the deadline")
    elapsed: Key | None = Field(None, description="number: business seconds to fulfilment")


class ClockSpec(SpecModel):
    """A named clock (response, resolution, onsite …), fulfilled when `fulfilled_when` holds."""

    key: Key
    label: Label | None = None
    fulfilled_when: Expr
    pausable: bool = Field(True, description="Paused statuses stop it; the hold is added back")
    restarts: bool = Field(False, description="Applies after a reopen in restart mode")
    fields: ClockFields = ClockFields()


class RecordFields(SpecModel):
    """Record fields that receive the results shared by every clock."""

    policy: Key | None = Field(None, description="text: the applied policy's key")
    start: Key | None = Field(None, description="datetime: the clock start")
    on_hold_since: Key | None = None
    hold: Key | None = Field(None, description="number: business seconds spent paused")
    escalation_level: Key | None = None


class PolicySpec(SpecModel):
    key: Key
    label: Label | None = None
    condition: Expr | None = Field(None, description="Expression over the record; not on default")
    default: bool = False
    calendar: Key
    targets: dict[str, dict[Key, Annotated[int, Field(gt=0)] | None]] = Field(
        description="Value of the select_by field → clock → target in business minutes"
    )
    warn_share: Share = 0.75
    pause_statuses: tuple[str, ...] | None = Field(None, description="Default: the SLA's list")
    reopen_mode: Literal["continue", "restart"] = "continue"


class EscalationStep(SpecModel):
    """At a clock's breach, or `after_share` of its target later: raise the level, notify the
    users in `notify` (user fields of the record) and set fields (expressions)."""

    clock: Key
    after_share: Annotated[float, Field(ge=0, le=10)] = 0
    level: Annotated[int, Field(ge=0, le=9)]
    when: Expr | None = None
    notify: tuple[UserPath, ...] = ()
    set: dict[Key, Expr] = Field(default_factory=dict)


class SlaSpec(SpecModel):
    schema_version: Literal[1] = 1
    key: Key
    label: Label | None = None
    description: Label | None = None
    form: FormRef
    select_by: Key = Field(description="Field whose value chooses a policy's targets row")
    status_field: Key
    pause_statuses: tuple[str, ...] = ()
    stop_when: Expr | None = Field(None, description="Clocks stop for good (e.g. cancelled)")
    warn_notify: tuple[UserPath, ...] = Field((), description="Notified at a warning")
    clocks: Annotated[tuple[ClockSpec, ...], Field(min_length=1)]
    fields: RecordFields = RecordFields()
    policies: Annotated[tuple[PolicySpec, ...], Field(min_length=1)]
    escalations: tuple[EscalationStep, ...] = ()


_DATETIME = ("datetime",)
_NUMBER = ("number",)
_TEXT = ("text", "select")
_FIELD_TYPES: Mapping[str, tuple[str, ...]] = {
    "target": _NUMBER,
    "due": _DATETIME,
    "warn_at": _DATETIME,
    "state": _TEXT,
    "late": _NUMBER,
    "elapsed": _NUMBER,
    "policy": _TEXT,
    "start": _DATETIME,
    "on_hold_since": _DATETIME,
    "hold": _NUMBER,
    "escalation_level": _NUMBER,
}


class _Checker:
    def __init__(self, spec: SlaSpec, form: CompiledForm, calendars: frozenset[str] | None):
        self.spec, self.form, self.calendars = spec, form, calendars
        self.problems: list[Problem] = []

    def report(self, code: str, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(code, path, message, hint=hint))

    def field_type(self, key: str, path: str) -> str | None:
        field = self.form.fields.get(key)
        if field is None:
            self.report("sla.unknown-field", path, f"form {self.form.key!r} has no field {key!r}")
            return None
        return str(getattr(field, "type", ""))

    def output(self, key: str | None, role: str, path: str) -> None:
        if key is None:
            return
        kind = self.field_type(key, path)
        if kind is not None and kind not in _FIELD_TYPES[role]:
            wanted = " or ".join(_FIELD_TYPES[role])
            self.report("sla.field-type", path, f"{key!r} is a {kind} field; {role} needs {wanted}")

    def expression(self, text: str | None, path: str, expected: str | None = "boolean") -> None:
        if text is None:
            return
        try:
            actual = check(parse(text), self.form.catalog)
        except ExpressionError as err:
            self.report("sla.bad-expression", path, err.message, hint=err.code)
            return
        from engine.forms._catalog import expr_type

        if expected is not None and not expr_type(expected).accepts(actual):
            self.report("sla.expression-type", path, f"expression gives {actual}, not {expected}")

    def options(self, key: str, values: Any, path: str) -> None:
        known = self.form.options.get(key)
        if known is None:
            return
        for index, value in enumerate(values):
            if value not in known:
                where = f"{path}/{index}" if isinstance(values, tuple | list) else f"{path}/{value}"
                self.report("sla.unknown-option", where, f"{value!r} is not an option of {key!r}")

    def users(self, paths: tuple[str, ...], path: str) -> None:
        """Each path must give a number (a user id) in the form's expression catalog."""
        for index, name in enumerate(paths):
            found = self.form.catalog.get(name)
            if found is None:
                self.report("sla.unknown-field", f"{path}/{index}", f"no field {name!r}")
            elif str(found) not in ("number", "any"):
                self.report("sla.field-type", f"{path}/{index}", f"{name!r} is not a user field")

    def run(self) -> list[Problem]:
        spec = self.spec
        self.field_type(spec.select_by, "/select_by")
        self.field_type(spec.status_field, "/status_field")
        self.options(spec.status_field, spec.pause_statuses, "/pause_statuses")
        self.users(spec.warn_notify, "/warn_notify")
        self.expression(spec.stop_when, "/stop_when")
        for role in RecordFields.model_fields:
            self.output(getattr(spec.fields, role), role, f"/fields/{role}")
        clocks = self._clocks()
        self._policies(clocks)
        for index, step in enumerate(spec.escalations):
            path = f"/escalations/{index}"
            if step.clock not in clocks:
                self.report("sla.unknown-clock", f"{path}/clock", f"no clock {step.clock!r}")
            self.expression(step.when, f"{path}/when")
            self.users(step.notify, f"{path}/notify")
            for key, text in step.set.items():
                self.field_type(key, f"{path}/set/{key}")
                self.expression(text, f"{path}/set/{key}", expected=None)
        return self.problems

    def _clocks(self) -> set[str]:
        keys: set[str] = set()
        for index, clock in enumerate(self.spec.clocks):
            path = f"/clocks/{index}"
            if clock.key in keys:
                self.report("sla.duplicate-key", f"{path}/key", f"clock {clock.key!r} twice")
            keys.add(clock.key)
            self.expression(clock.fulfilled_when, f"{path}/fulfilled_when")
            for role in ClockFields.model_fields:
                self.output(getattr(clock.fields, role), role, f"{path}/fields/{role}")
        return keys

    def _policies(self, clocks: set[str]) -> None:
        defaults = [i for i, p in enumerate(self.spec.policies) if p.default]
        if len(defaults) != 1:
            where = "/policies" if not defaults else f"/policies/{defaults[1]}/default"
            self.report(
                "sla.default-policy",
                where,
                f"exactly one policy must be the default, found {len(defaults)}",
                hint="mark one policy default: true (it has no condition and applies last)",
            )
        seen: set[str] = set()
        for index, policy in enumerate(self.spec.policies):
            path = f"/policies/{index}"
            if policy.key in seen:
                self.report("sla.duplicate-key", f"{path}/key", f"policy {policy.key!r} twice")
            seen.add(policy.key)
            if policy.default and policy.condition is not None:
                self.report("sla.default-condition", f"{path}/condition", "a default has none")
            if not policy.default and policy.condition is None:
                self.report("sla.missing-condition", f"{path}", "only the default may omit it")
            self.expression(policy.condition, f"{path}/condition")
            if self.calendars is not None and policy.calendar not in self.calendars:
                self.report("sla.unknown-calendar", f"{path}/calendar", "no such calendar")
            self.options(self.spec.select_by, tuple(policy.targets), f"{path}/targets")
            for value, row in policy.targets.items():
                for clock in row:
                    if clock not in clocks:
                        self.report(
                            "sla.unknown-clock", f"{path}/targets/{value}/{clock}", "no such clock"
                        )
            if policy.pause_statuses is not None:
                statuses = policy.pause_statuses
                self.options(self.spec.status_field, statuses, f"{path}/pause_statuses")


def check_sla(
    spec: SlaSpec, form: CompiledForm, *, calendars: frozenset[str] | None = None
) -> list[Problem]:
    """Every problem of `spec` against its compiled form (and the calendar keys, when known)."""
    return _Checker(spec, form, calendars).run()


def validate_sla(
    spec: SlaSpec, form: CompiledForm, *, calendars: frozenset[str] | None = None
) -> SlaSpec:
    problems = check_sla(spec, form, calendars=calendars)
    if problems:
        raise DefinitionError(problems)
    return spec


def check_kind(kind: str, view: BundleView) -> list[Problem]:
    """Bundle check: each SLA against its form compiled with the bundle's forms."""
    from engine.bundles.semantics import _shared_option_sets
    from engine.forms.compiler import compile_form

    forms: Any = view.definitions.get("forms", {})
    option_sets, _ = _shared_option_sets(view)  # the form check reports these problems
    problems: list[Problem] = []
    for key, spec in sorted(view.definitions[kind].items()):
        assert isinstance(spec, SlaSpec)
        form = forms.get(spec.form)
        if form is None:
            continue  # the reference check reports it
        try:
            compiled = compile_form(form, forms=forms, option_sets=option_sets)
        except DefinitionError:
            continue  # the form check reports it
        source = view.sources[(kind, key)]
        found = check_sla(spec, compiled)  # calendar keys: the reference check
        problems.extend(p.located(source=source) for p in found)
    return problems


SPEC_MODEL = SlaSpec

__all__ = [
    "SLA_SCHEMA_VERSION",
    "SPEC_MODEL",
    "ClockFields",
    "ClockSpec",
    "EscalationStep",
    "PolicySpec",
    "RecordFields",
    "SlaSpec",
    "check_kind",
    "check_sla",
    "validate_sla",
]

"""Publishing one form: validate, plan the table change, then publish and alter in one transaction.

The plan is the one `tangram import --dry-run` prints for the form's table, preceded by the
definition-only changes (labels, options, settings) that need no DDL. A refused plan changes
nothing; a published one is a new definition version together with its table change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from engine.bundles.documents import parse_document, validate_document
from engine.bundles.dump import canonical_definition, definition_digest
from engine.bundles.limits import BundleLimits
from engine.errors import DefinitionError, NotFoundError, Problem
from engine.forms.spec import FormSpec, OptionSetsFile, OptionSetSpec
from engine.storage.conflicts import STALE, ConstraintConflict
from engine.storage.form_tables import (
    FormTablePlan,
    apply_form_table_plan,
    describe,
    plan_form_table,
    purge_columns,
)
from engine.storage.records import DefinitionRecord, DefinitionVersionRecord
from engine.storage.uow import UnitOfWork

KIND = "forms"
OPTION_SETS_FILE = "data/option_sets.yaml"


@dataclass(frozen=True, slots=True)
class FormPublishPlan:
    """What publishing a form does: definition lines, table lines, and what refuses it.

    `version_to` is None when the definition is unchanged; its table may still need steps
    (e.g. a table dropped by hand), which a publish then applies without a new version.
    """

    app: str
    form: str
    version_from: int | None
    version_to: int | None  # None when the definition is unchanged
    lines: tuple[str, ...]
    problems: tuple[Problem, ...]
    applied: bool = False

    @property
    def is_noop(self) -> bool:
        return self.version_to is None


@dataclass(frozen=True, slots=True)
class _Published:
    """The form as it stands in the database before this publish."""

    spec: FormSpec | None
    version: int | None
    retired: bool


def plan_form_publish(*, db: sa.Engine, app: str, spec: FormSpec) -> FormPublishPlan:
    """The plan of publishing `spec` in `app`, with every problem; changes nothing.

    Raises:
        NotFoundError: the app is not installed.
    """
    with UnitOfWork(db) as uow:
        plan, _table_plan = _plan(uow, app, spec)
    return plan


def publish_form(
    *,
    db: sa.Engine,
    app: str,
    spec: FormSpec,
    actor: int | None,
    dry_run: bool = False,
    base_version: int | None = None,
) -> FormPublishPlan:
    """Publish `spec` as the next version of its form and change its table, atomically.

    Args:
        base_version: the version the caller edited; a publish in between makes this one fail.

    Raises:
        DefinitionError: the definition is invalid or its table change would lose data.
        ConflictError: another publish of the same form won (`storage.stale-version`) or the
            database is busy; nothing was written.
        NotFoundError: the app is not installed.
    """
    with UnitOfWork(db) as uow:
        plan, table_plan = _plan(uow, app, spec)
        if plan.problems:
            raise DefinitionError(list(plan.problems))
        if base_version is not None and base_version != plan.version_from:
            raise _stale(app, spec.key, base_version, plan.version_from)
        if dry_run or (plan.is_noop and table_plan.is_empty):
            return plan
        if not plan.is_noop:
            _publish_definition(uow, app, spec, actor, plan)
        apply_form_table_plan(uow.conn, table_plan)
        uow.audit.record(
            action="form.publish",
            target_kind="form",
            target_key=f"{app}.{spec.key}",
            actor=actor,
            detail={"version": plan.version_to, "changes": list(plan.lines)},
        )
        uow.commit()
    return replace(plan, applied=True)


def list_forms(*, db: sa.Engine, app: str) -> list[DefinitionRecord]:
    """The app's published forms (retired ones left out)."""
    with UnitOfWork(db) as uow:
        uow.definitions.get_app(key=app)
        return uow.definitions.list_definitions(app=app, kind=KIND)


def get_form(
    *, db: sa.Engine, app: str, form: str, version: int | None = None
) -> DefinitionVersionRecord:
    """The current definition of a form, or one of its versions."""
    with UnitOfWork(db) as uow:
        if version is None:
            return uow.definitions.get_current(app=app, kind=KIND, key=form)
        return uow.definitions.get_version(app=app, kind=KIND, key=form, version=version)


def list_form_versions(*, db: sa.Engine, app: str, form: str) -> list[DefinitionVersionRecord]:
    """Every published version of a form, oldest first."""
    with UnitOfWork(db) as uow:
        return uow.definitions.list_versions(app=app, kind=KIND, key=form)


def purge_field(
    *, db: sa.Engine, app: str, form: str, field: str, actor: int | None, dry_run: bool = False
) -> list[str]:
    """Drop the column(s) and child tables of a retired field; returns what goes.

    Raises:
        DefinitionError: the field is still in use (`storage.field-not-retired`) or has
            nothing left to purge (`storage.nothing-to-purge`).
        NotFoundError: no such form.
    """
    with UnitOfWork(db) as uow:
        published = _published(uow, app, form)
        if published.spec is None:
            message = f"form {app}.{form} is not published"
            raise NotFoundError(message, code="storage.definition-not-found")
        related = _other_forms(uow, app, form)
        lines = purge_columns(
            uow.conn,
            app=app,
            form=published.spec,
            field=field,
            related_forms=related,
            dry_run=dry_run,
        )
        if dry_run:
            return lines
        uow.audit.record(
            action="form.purge-field",
            target_kind="form",
            target_key=f"{app}.{form}",
            actor=actor,
            detail={"field": field, "dropped": lines},
        )
        uow.commit()
    return lines


def _publish_definition(
    uow: UnitOfWork, app: str, spec: FormSpec, actor: int | None, plan: FormPublishPlan
) -> None:
    result = uow.definitions.publish(
        app=app,
        kind=KIND,
        key=spec.key,
        body=canonical_definition(spec),
        digest=definition_digest(spec),
        actor=actor,
    )
    if result.version.version != plan.version_to:
        # another publish committed after this plan was made: the plan is out of date
        raise _stale(app, spec.key, plan.version_from, result.version.version - 1)


# --- planning --------------------------------------------------------------------------------


def _plan(uow: UnitOfWork, app: str, spec: FormSpec) -> tuple[FormPublishPlan, FormTablePlan]:
    uow.definitions.get_app(key=app)
    published = _published(uow, app, spec.key)
    others = _other_forms(uow, app, spec.key)
    option_sets = _option_sets(uow, app)
    problems = _compile_problems(spec, others, option_sets)
    table_plan = plan_form_table(
        uow.conn,
        app=app,
        form=spec,
        related_forms=[*others, spec],
        previous=published.spec,
        option_sets=option_sets,
    )
    changed = (
        published.spec is None
        or published.retired
        or (definition_digest(published.spec) != definition_digest(spec))
    )
    version_to = (published.version or 0) + 1 if changed else None
    lines = list(_definition_lines(published, spec, version_to)) + describe(table_plan)
    plan = FormPublishPlan(
        app=app,
        form=spec.key,
        version_from=published.version,
        version_to=version_to,
        lines=tuple(lines),
        problems=tuple(problems) + table_plan.problems,
    )
    return plan, table_plan


def _published(uow: UnitOfWork, app: str, key: str) -> _Published:
    try:
        record = uow.definitions.get_current(app=app, kind=KIND, key=key)
    except NotFoundError:
        return _Published(spec=None, version=None, retired=False)
    retired = any(
        d.key == key and d.retired
        for d in uow.definitions.list_definitions(app=app, kind=KIND, include_retired=True)
    )
    return _Published(FormSpec.model_validate(record.body), record.version, retired)


def _other_forms(uow: UnitOfWork, app: str, key: str) -> list[FormSpec]:
    return [
        FormSpec.model_validate(uow.definitions.get_current(app=app, kind=KIND, key=d.key).body)
        for d in uow.definitions.list_definitions(app=app, kind=KIND)
        if d.key != key
    ]


def _option_sets(uow: UnitOfWork, app: str) -> dict[str, OptionSetSpec]:
    """The app's shared option sets (`data/option_sets.yaml`), empty when it has none."""
    try:
        stored = uow.bundle_files.get(app=app, path=OPTION_SETS_FILE)
    except NotFoundError:
        return {}
    value, problems = parse_document(OPTION_SETS_FILE, stored.content or b"", BundleLimits())
    parsed, more = validate_document(OptionSetsFile, OPTION_SETS_FILE, value)
    if problems or more or parsed is None:
        raise DefinitionError([*problems, *more])
    return {option_set.key: option_set for option_set in parsed.option_sets}


def _compile_problems(
    spec: FormSpec, others: list[FormSpec], option_sets: Mapping[str, OptionSetSpec]
) -> list[Problem]:
    from engine.forms.compiler import compile_form

    forms = {form.key: form for form in others} | {spec.key: spec}
    try:
        compile_form(spec, forms=forms, option_sets=option_sets)
    except DefinitionError as err:
        return list(err.problems)
    return []


def _definition_lines(
    published: _Published, spec: FormSpec, version_to: int | None
) -> Iterator[str]:
    """The changes that need no DDL: the version, labels, options and other settings."""
    if version_to is None:
        return
    if published.spec is None:
        yield f"+ form {spec.key} version {version_to}"
        return
    yield f"~ form {spec.key} version {published.version} -> {version_to}"
    before = {field.key: field for field in published.spec.fields}
    for field in spec.fields:
        old = before.get(field.key)
        if old is None or old == field:
            continue
        yield from _field_lines(old, field)


def _field_lines(old: Any, new: Any) -> Iterator[str]:
    where = f"= field {new.key}:"
    if getattr(old, "label", None) != getattr(new, "label", None):
        yield f"{where} label changed (definition only)"
    old_options = {o.key for o in getattr(old, "options", ())}
    added = [o.key for o in getattr(new, "options", ()) if o.key not in old_options]
    if added:
        yield f"{where} options added {', '.join(added)} (definition only)"
    ignored = {"label", "options"}
    old_rest, new_rest = _settings(old, ignored), _settings(new, ignored)
    if old_rest != new_rest:
        changed = sorted(
            k for k in old_rest.keys() | new_rest.keys() if old_rest.get(k) != new_rest.get(k)
        )
        yield f"{where} {', '.join(changed)} changed"


def _settings(field: Any, ignored: set[str]) -> dict[str, Any]:
    dumped: dict[str, Any] = field.model_dump(mode="json", exclude_defaults=True)
    return {k: v for k, v in dumped.items() if k not in ignored}


def _stale(app: str, key: str, base: int | None, current: int | None) -> ConstraintConflict:
    return ConstraintConflict(
        f"form {app}.{key} is at version {current}, not {base}: reload and publish again",
        code=STALE,
    )


__all__ = [
    "FormPublishPlan",
    "get_form",
    "list_form_versions",
    "list_forms",
    "plan_form_publish",
    "publish_form",
    "purge_field",
]

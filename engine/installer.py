"""Installing bundles: plan an import against what is installed, apply it in one transaction.

An import publishes every changed definition as a new version, creates or extends the form
tables, stores the bundle's opaque files and records an audit entry, all in one transaction.
Definitions that left the bundle are retired (kept, hidden), never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from engine.bundles import Bundle, BundleManifest, canonical_definition, definition_digest
from engine.bundles.kinds import DEFAULT_KINDS, KindRegistry
from engine.errors import DefinitionError, NotFoundError
from engine.settings import Settings
from engine.spec_base import SpecModel
from engine.storage import UnitOfWork, create_database_engine, upgrade_database
from engine.storage._fts import ensure_search_index
from engine.storage.form_tables import (
    FormTablePlan,
    apply_form_table_plans,
    describe,
    form_tables,
    plan_form_tables,
)
from engine.storage.records import AppRecord
from engine.storage.sqltypes import utc_now

ADMIN_USERNAME = "admin"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One change of an import: `action` is create, update, retire or unchanged."""

    kind: str
    key: str
    action: str
    changes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing a bundle does; `is_noop` when everything is already installed as is."""

    app: str
    version_from: str | None
    version_to: str
    items: tuple[PlanItem, ...]

    @property
    def is_noop(self) -> bool:
        return all(item.action == "unchanged" for item in self.items)

    def describe(self) -> list[str]:
        """Lines for a terminal: the app, then each change with its details indented."""
        head = f"app {self.app}: {self.version_from or 'not installed'} -> {self.version_to}"
        lines = [head]
        for item in self.items:
            if item.action == "unchanged":
                continue
            lines.append(f"  {item.action:<9} {item.kind:<10} {item.key}")
            lines += [f"      {change}" for change in item.changes]
        if self.is_noop:
            lines.append("  no changes")
        return lines


def open_database(settings: Settings) -> sa.Engine:
    """The settings' database, migrated to the latest revision (idempotent)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_database_engine(settings.resolved_database_url())
    upgrade_database(engine)
    return engine


def initialise(*, settings: Settings) -> str | None:
    """Migrate the database and create the `admin` user if missing.

    Returns the admin's generated password (to print once) when the user was created, else None.
    """
    from engine.identity.accounts import create_user, grant_role
    from engine.identity.passwords import generate_password
    from engine.identity.sessions import SignInPolicy

    engine = open_database(settings)
    try:
        with UnitOfWork(engine) as uow:
            if uow.users.find_by_username(username=ADMIN_USERNAME) is not None:
                return None
            password = generate_password()
            policy = SignInPolicy.from_settings(settings).passwords
            user = create_user(
                uow=uow,
                actor=None,
                username=ADMIN_USERNAME,
                display_name="Administrator",
                password=password,
                policy=policy,
            )
            grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user.id)
            uow.commit()
            return password
    finally:
        engine.dispose()


def import_bundle(
    *, db: sa.Engine, bundle: Bundle, actor: int | None = None, dry_run: bool = False
) -> ImportPlan:
    """Plan the import of `bundle` and, unless `dry_run` or nothing changes, apply it atomically.

    Raises:
        DefinitionError: the bundle cannot be installed as is (e.g. a form table problem).
        ConflictError: a concurrent import won the race; nothing was written.
    """
    with UnitOfWork(db) as uow:
        plan, table_plans = _plan(uow, bundle)
        if dry_run or plan.is_noop:
            return plan
        _apply(uow, bundle, plan, table_plans, actor)
        uow.commit()
    return plan


def _plan(uow: UnitOfWork, bundle: Bundle) -> tuple[ImportPlan, tuple[FormTablePlan, ...]]:
    app = bundle.manifest.key
    installed_app = _find_app(uow, app)
    table_plans = plan_form_tables(
        uow.conn, app=app, forms=list(bundle.definitions.get("forms", {}).values())
    )
    _raise_table_problems(bundle, table_plans)
    items = [_app_item(bundle.manifest, installed_app)]
    items += _definition_items(uow, bundle)
    items += [_table_item(plan) for plan in table_plans]
    items += _file_items(uow, bundle)
    plan = ImportPlan(
        app=app,
        version_from=installed_app.version if installed_app else None,
        version_to=bundle.manifest.version,
        items=tuple(items),
    )
    return plan, table_plans


def _find_app(uow: UnitOfWork, app: str) -> AppRecord | None:
    try:
        return uow.definitions.get_app(key=app)
    except NotFoundError:
        return None


def _raise_table_problems(bundle: Bundle, plans: tuple[FormTablePlan, ...]) -> None:
    problems = [
        p.located(source=bundle.sources.get(("forms", plan.form)))
        for plan in plans
        for p in plan.problems
    ]
    if problems:
        raise DefinitionError(problems)


def _app_item(manifest: BundleManifest, installed: AppRecord | None) -> PlanItem:
    body = canonical_definition(manifest)
    if installed is None:
        return PlanItem("app", manifest.key, "create", (f"version {manifest.version}",))
    if installed.manifest == body:
        return PlanItem("app", manifest.key, "unchanged")
    return PlanItem(
        "app", manifest.key, "update", (f"version {installed.version} -> {manifest.version}",)
    )


def _definition_items(uow: UnitOfWork, bundle: Bundle) -> Iterator[PlanItem]:
    app = bundle.manifest.key
    installed = {
        (d.kind, d.key): d for d in uow.definitions.list_definitions(app=app, include_retired=True)
    }
    for kind, key, spec in bundle.iter_definitions():
        current = installed.get((kind, key))
        if current is None:
            yield PlanItem(kind, key, "create", ("version 1",))
        elif current.current_digest != definition_digest(spec) or current.retired:
            yield PlanItem(kind, key, "update", (f"version {current.current_version + 1}",))
        else:
            yield PlanItem(kind, key, "unchanged")
    for (kind, key), current in sorted(installed.items()):
        if key not in bundle.definitions.get(kind, {}) and not current.retired:
            yield PlanItem(kind, key, "retire", ("kept with its versions, hidden",))


def _table_item(plan: FormTablePlan) -> PlanItem:
    changes = tuple(describe(plan))
    if plan.is_empty:
        return PlanItem("tables", plan.table, "unchanged", changes)
    creates = any(line.startswith(f"+ table {plan.table}") for line in changes)
    return PlanItem("tables", plan.table, "create" if creates else "update", changes)


def _file_items(uow: UnitOfWork, bundle: Bundle) -> Iterator[PlanItem]:
    stored = {f.path: f.digest for f in uow.bundle_files.list_files(app=bundle.manifest.key)}
    for path, content in sorted(bundle.files.items()):
        digest = hashlib.sha256(content).hexdigest()
        if path not in stored:
            yield PlanItem("files", path, "create", (f"{len(content)} bytes",))
        elif stored[path] != digest:
            yield PlanItem("files", path, "update", (f"{len(content)} bytes",))
        else:
            yield PlanItem("files", path, "unchanged")
    for path in sorted(set(stored) - set(bundle.files)):
        yield PlanItem("files", path, "remove")


def _apply(
    uow: UnitOfWork,
    bundle: Bundle,
    plan: ImportPlan,
    table_plans: tuple[FormTablePlan, ...],
    actor: int | None,
) -> None:
    manifest = bundle.manifest
    app = manifest.key
    uow.definitions.install_app(
        key=app,
        name=manifest.name,
        version=manifest.version,
        manifest=canonical_definition(manifest),
    )
    apply_form_table_plans(uow.conn, table_plans)
    _ensure_search_indexes(uow, bundle, table_plans)
    for item in plan.items:
        _APPLY_ITEM.get(item.kind, _apply_definition)(uow, bundle, item, actor)
    _sync_public_links(uow, bundle, actor)
    uow.audit.record(
        action="bundle.import",
        target_kind="app",
        target_key=app,
        actor=actor,
        detail={
            "version": manifest.version,
            "changes": [
                f"{i.action} {i.kind} {i.key}" for i in plan.items if i.action != "unchanged"
            ],
        },
    )
    _queue_first_runs(uow, app)


def _sync_public_links(uow: UnitOfWork, bundle: Bundle, actor: int | None) -> None:
    """Forms' `public:` links are published (or updated, same token) with the forms."""
    from engine.public.bundle_links import sync_bundle_links

    forms = bundle.definitions.get("forms", {})
    sources = {key: bundle.sources.get(("forms", key), "") for key in forms}
    sync_bundle_links(
        uow,
        app=bundle.manifest.key,
        forms=forms,  # type: ignore[arg-type]
        sources=sources,
        actor=actor,
    )


def _queue_first_runs(uow: UnitOfWork, app: str) -> None:
    """Schedule-triggered flows, dashboard alerts and deliveries and report snapshots run as
    jobs that queue their own next run; an import queues the first (an already queued run is
    kept, so re-imports add nothing)."""
    from engine.flows.runtime_env import environment
    from engine.flows.service import queue_schedules
    from engine.reports.alerts import schedule_app_alerts
    from engine.reports.delivery import schedule_app_deliveries
    from engine.reports.snapshots import schedule_app_snapshots

    now = utc_now()
    queue_schedules(uow, environment(), app=app, now=now)
    schedule_app_alerts(uow, app=app, now=now)
    schedule_app_snapshots(uow, app=app, now=now)
    schedule_app_deliveries(uow, app=app, now=now)


def _ensure_search_indexes(
    uow: UnitOfWork, bundle: Bundle, table_plans: tuple[FormTablePlan, ...]
) -> None:
    """Keep each changed form's full-text index in step with its table."""
    forms = bundle.definitions.get("forms", {})
    related = list(forms.values())
    for plan in table_plans:
        if plan.is_empty:
            continue
        spec = forms[plan.form]
        tables = form_tables(app=bundle.manifest.key, form=spec, related_forms=related)
        ensure_search_index(uow.conn, form=spec, tables=tables)


def _apply_definition(uow: UnitOfWork, bundle: Bundle, item: PlanItem, actor: int | None) -> None:
    app = bundle.manifest.key
    if item.action == "retire":
        uow.definitions.retire(app=app, kind=item.kind, key=item.key)
    elif item.action in ("create", "update"):
        spec = bundle.definition(item.kind, item.key)
        uow.definitions.publish(
            app=app,
            kind=item.kind,
            key=item.key,
            body=canonical_definition(spec),
            digest=definition_digest(spec),
            actor=actor,
        )


def _apply_file(uow: UnitOfWork, bundle: Bundle, item: PlanItem, _actor: int | None) -> None:
    app = bundle.manifest.key
    if item.action == "remove":
        uow.bundle_files.delete(app=app, path=item.key)
    elif item.action in ("create", "update"):
        uow.bundle_files.put(app=app, path=item.key, content=bundle.files[item.key])


def _skip(_uow: UnitOfWork, _bundle: Bundle, _item: PlanItem, _actor: int | None) -> None:
    """Applied elsewhere: the app row and the tables go first, as a whole."""


_APPLY_ITEM = {"app": _skip, "tables": _skip, "files": _apply_file}


def list_apps(*, db: sa.Engine) -> list[AppRecord]:
    """The installed apps, by key."""
    with UnitOfWork(db) as uow:
        return uow.definitions.list_apps()


def export_app(*, db: sa.Engine, app: str, kinds: KindRegistry = DEFAULT_KINDS) -> Bundle:
    """The installed app `app` as a bundle of the current version of each definition.

    Raises:
        NotFoundError: the app is not installed.
    """
    with UnitOfWork(db) as uow:
        record = uow.definitions.get_app(key=app)
        definitions: dict[str, dict[str, SpecModel]] = {kind: {} for kind in kinds}
        for found in uow.definitions.list_definitions(app=app):
            body = uow.definitions.get_current(app=app, kind=found.kind, key=found.key).body
            definitions[found.kind][found.key] = kinds[found.kind].model_validate(body)
        files = {
            f.path: uow.bundle_files.get(app=app, path=f.path).content or b""
            for f in uow.bundle_files.list_files(app=app)
        }
    return Bundle(
        manifest=BundleManifest.model_validate(record.manifest),
        definitions=definitions,
        sources={(k, key): f"{k}/{key}.yaml" for k, specs in definitions.items() for key in specs},
        files=files,
    )


__all__ = [
    "ImportPlan",
    "PlanItem",
    "export_app",
    "import_bundle",
    "initialise",
    "list_apps",
    "open_database",
]

"""The `tangram` command line: init, check, import, export, purge, demo, serve, worker."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from engine.errors import DefinitionError, EngineError
from engine.settings import Settings


@contextmanager
def _step(label: str) -> Iterator[None]:
    """Print a progress line for a long step, with its duration."""
    click.echo(f"{label} …", err=True, nl=False)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        click.echo(" failed", err=True)
        raise
    click.echo(f" done ({time.perf_counter() - started:.2f} s)", err=True)


def _fail(err: EngineError) -> None:
    from engine.bundles import format_problems

    click.secho(f"error {err.code}: {err.message}", fg="red", err=True)
    if isinstance(err, DefinitionError):
        click.echo(format_problems(err.problems), err=True)
    sys.exit(1)


@click.group()
@click.option("--database-url", envvar="TANGRAM_DATABASE_URL", help="SQLAlchemy database URL.")
@click.option(
    "--data-dir",
    envvar="TANGRAM_DATA_DIR",
    type=click.Path(path_type=Path),
    help="Folder for files and the embedded database (default ./data).",
)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, data_dir: Path | None) -> None:
    """Tangram: form, flow and report engines over YAML/JSON definitions."""
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if data_dir:
        overrides["data_dir"] = data_dir
    ctx.obj = Settings(**overrides)


@cli.command()
@click.pass_obj
def init(settings: Settings) -> None:
    """Create or upgrade the database and the first admin user."""
    from engine.installer import initialise

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _step(f"migrating {settings.resolved_database_url()}"):
        password = initialise(settings=settings)
    if password is None:
        click.echo("database is up to date")
    else:
        click.echo(f"created user admin with password {password}")
        click.echo("it is shown only now: sign in and change it", err=True)


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def check(path: Path) -> None:
    """Validate a bundle (folder or zip) without a database."""
    from engine.bundles import check_bundle

    try:
        with _step(f"checking {path}"):
            report = check_bundle(path)
    except EngineError as err:
        _fail(err)
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts.items() if n)
    click.echo(f"ok: {report.manifest.key} {report.manifest.version}: {counts or 'empty'}")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.pass_obj
def import_(settings: Settings, path: Path, dry_run: bool) -> None:
    """Import a bundle: print the plan, then apply it in one transaction."""
    from engine.bundles import load_bundle
    from engine.installer import import_bundle, open_database

    try:
        with _step(f"loading {path}"):
            bundle = load_bundle(path)
        db = open_database(settings)
        with _step("planning" if dry_run else "planning and applying"):
            plan = import_bundle(db=db, bundle=bundle, dry_run=dry_run)
    except EngineError as err:
        _fail(err)
    for line in plan.describe():
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing was changed")
    else:
        click.echo("nothing to do" if plan.is_noop else "applied")


@cli.command()
@click.argument("app")
@click.argument("target", type=click.Path(path_type=Path))
@click.pass_obj
def export(settings: Settings, app: str, target: Path) -> None:
    """Export an installed app as a bundle folder, or a zip when TARGET ends in .zip."""
    from engine.bundles import dump_bundle
    from engine.installer import export_app, open_database

    try:
        with _step(f"exporting {app}"):
            bundle = export_app(db=open_database(settings), app=app)
            dump_bundle(bundle, target)
    except EngineError as err:
        _fail(err)
    click.echo(f"wrote {target}")


@cli.command()
@click.argument("app")
@click.argument("form")
@click.argument("field")
@click.option("--yes", is_flag=True, help="Drop without asking.")
@click.pass_obj
def purge(settings: Settings, app: str, form: str, field: str, yes: bool) -> None:
    """Drop the column(s) and child tables of a retired FIELD of FORM; this loses its data."""
    from engine.forms.publish import purge_field
    from engine.installer import open_database

    try:
        db = open_database(settings)
        preview = purge_field(db=db, app=app, form=form, field=field, actor=None, dry_run=True)
        for line in preview:
            click.echo(line)
        if not yes and not click.confirm("drop these for good?", default=False):
            click.echo("nothing was changed")
            return
        with _step("purging"):
            purge_field(db=db, app=app, form=form, field=field, actor=None)
    except EngineError as err:
        _fail(err)
    click.echo("purged")


@cli.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--worker/--no-worker",
    "worker",
    default=None,
    help="Run due jobs in this process too (default: with SQLite only).",
)
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, worker: bool | None) -> None:
    """Serve the API and the web UI with uvicorn."""
    import uvicorn

    from api.app import create_app
    from engine.installer import open_database
    from engine.jobs.runner import background_worker

    open_database(settings).dispose()  # an embedded database is ready without a separate init
    app = create_app(settings)
    with background_worker(settings, enabled=worker):
        uvicorn.run(app, host=host or settings.host, port=port or settings.port)


@cli.command()
@click.argument("app_dir", default="templates/aftersales",
                type=click.Path(exists=True, file_okay=False, path_type=Path))  # fmt: skip
@click.option("--tickets", type=click.IntRange(1, 1_000_000), default=None, help="Volume N.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same data).")
@click.pass_obj
def demo(settings: Settings, app_dir: Path, tickets: int | None, seed: int | None) -> None:
    """Load the demo data of the installed bundle APP_DIR (its demo.yaml names the generator)."""
    from demo import read_settings, run_generator
    from engine.installer import open_database

    source = app_dir / "demo.yaml"
    if not source.is_file():
        raise click.UsageError(f"{source} does not exist: this bundle has no demo data")
    try:
        config = read_settings(source.read_bytes(), tickets=tickets, seed=seed)
        db = open_database(settings)
        with _step(f"generating {config.tickets} tickets (seed {config.seed})"):
            result = run_generator(db, config, files=settings.data_dir / "files")
        db.dispose()
    except EngineError as err:
        _fail(err)
    if not result.loaded:
        click.echo("demo data already loaded: nothing to do")
    else:
        click.echo("loaded " + ", ".join(f"{n} {kind}" for kind, n in result.counts.items()))


@cli.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, help="Worker threads.")
@click.option("--once", is_flag=True, help="Run the jobs due now, then exit.")
@click.pass_obj
def worker(settings: Settings, concurrency: int, once: bool) -> None:
    """Run due jobs (timers, SLA checks, e-mail, webhooks) until SIGINT/SIGTERM."""
    import logging

    from engine.installer import open_database
    from engine.jobs.runner import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    db = open_database(settings)
    try:
        count = run_worker(settings, db=db, concurrency=concurrency, once=once)
    finally:
        db.dispose()
    if once:
        click.echo(f"ran {count} job(s)")


@cli.group()
def files() -> None:
    """Stored uploads."""


@files.command("gc")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Keep uploads younger than this (they may be attached soon).",
)
@click.pass_obj
def files_gc(settings: Settings, dry_run: bool, grace_hours: float) -> None:
    """Delete stored files no record refers to any more, and their blobs."""
    from datetime import timedelta

    from engine.forms.file_gc import collect_garbage
    from engine.installer import open_database
    from engine.storage.sqltypes import utc_now

    db = open_database(settings)
    try:
        report = collect_garbage(
            db,
            root=settings.data_dir / "files",
            now=utc_now(),
            grace=timedelta(hours=grace_hours),
            dry_run=dry_run,
        )
    except EngineError as err:
        _fail(err)
    finally:
        db.dispose()
    click.echo(report.describe())


# --- users and roles (helper "auth") ------------------------------------------------------------


@contextmanager
def _unit(settings: Settings) -> Iterator[Any]:
    from engine.installer import open_database
    from engine.storage.uow import UnitOfWork

    db = open_database(settings)
    try:
        with UnitOfWork(db) as uow:
            yield uow
    except EngineError as err:
        _fail(err)
    finally:
        db.dispose()


def _password_policy(settings: Settings) -> Any:
    from engine.identity.sessions import SignInPolicy

    return SignInPolicy.from_settings(settings).passwords


@cli.group()
def user() -> None:
    """Manage users: add, list, disable, passwd."""


@user.command("add")
@click.argument("username")
@click.option("--name", "display_name", help="Display name (default: the username).")
@click.option("--email", default=None)
@click.option("--admin", is_flag=True, help="Grant the global admin role.")
@click.pass_obj
def user_add(
    settings: Settings, username: str, display_name: str | None, email: str | None, admin: bool
) -> None:
    """Add a user with a generated password, printed once."""
    from engine.identity.accounts import create_user, grant_role
    from engine.identity.passwords import generate_password

    password = generate_password()
    with _unit(settings) as uow:
        created = create_user(
            uow=uow,
            actor=None,
            username=username,
            display_name=display_name or username,
            email=email,
            password=password,
            policy=_password_policy(settings),
        )
        if admin:
            grant_role(uow=uow, actor=None, app=None, role="admin", user_id=created.id)
        uow.commit()
    click.echo(f"created user {username} with password {password}")


@user.command("list")
@click.pass_obj
def user_list(settings: Settings) -> None:
    """List users: id, username, status, display name."""
    with _unit(settings) as uow:
        for record in uow.users.list_users():
            click.echo(f"{record.id}\t{record.username}\t{record.status}\t{record.display_name}")


@user.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable instead.")
@click.pass_obj
def user_disable(settings: Settings, username: str, enable: bool) -> None:
    """Disable a user (sessions end, tokens stop working); --enable reverses it."""
    from engine.identity.accounts import set_user_active

    with _unit(settings) as uow:
        target = uow.users.get_by_username(username=username)
        set_user_active(uow=uow, actor=None, user_id=target.id, active=enable)
        uow.commit()
    click.echo(f"{'enabled' if enable else 'disabled'} {username}")


@user.command("passwd")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_obj
def user_passwd(settings: Settings, username: str, password: str) -> None:
    """Set a user's password (prompted); their sessions end."""
    from engine.identity.accounts import set_password

    with _unit(settings) as uow:
        target = uow.users.get_by_username(username=username)
        set_password(
            uow=uow,
            actor=None,
            user_id=target.id,
            password=password,
            policy=_password_policy(settings),
        )
        uow.commit()
    click.echo(f"password of {username} changed")


@cli.group()
def role() -> None:
    """Grant and revoke roles: ROLE is APP.KEY, or `admin` for the global admin role."""


def _grant_args(
    uow: Any, role_name: str, username: str | None, department: str | None
) -> dict[str, Any]:
    app, _, key = role_name.rpartition(".")
    args: dict[str, Any] = {"app": app or None, "role": key}
    if (username is None) == (department is None):
        raise click.UsageError("give exactly one of --user or --department")
    if username is not None:
        args["user_id"] = uow.users.get_by_username(username=username).id
    else:
        found = uow.departments.find_by_key(key=department)
        if found is None:
            raise click.UsageError(f"no department {department!r}")
        args["department_id"] = found.id
    return args


@role.command("grant")
@click.argument("role_name", metavar="ROLE")
@click.option("--user", "username", default=None)
@click.option("--department", default=None, help="Department key (reaches sub-departments).")
@click.pass_obj
def role_grant(
    settings: Settings, role_name: str, username: str | None, department: str | None
) -> None:
    """Grant ROLE to a user or a department."""
    from engine.identity.accounts import grant_role

    with _unit(settings) as uow:
        grant_role(uow=uow, actor=None, **_grant_args(uow, role_name, username, department))
        uow.commit()
    click.echo(f"granted {role_name} to {username or department}")


@role.command("revoke")
@click.argument("role_name", metavar="ROLE")
@click.option("--user", "username", default=None)
@click.option("--department", default=None)
@click.pass_obj
def role_revoke(
    settings: Settings, role_name: str, username: str | None, department: str | None
) -> None:
    """Revoke ROLE from a user or a department."""
    from engine.identity.accounts import revoke_role

    with _unit(settings) as uow:
        done = revoke_role(uow=uow, actor=None, **_grant_args(uow, role_name, username, department))
        uow.commit()
    click.echo(f"revoked {role_name}" if done else "no such grant")


# --- flows (helper "flows") -------------------------------------------------------------------


@cli.group()
def flow() -> None:
    """Flows: simulate."""


@flow.command("simulate")
@click.argument("flow_key", metavar="FLOW")
@click.option("--app", "app", required=True, help="The installed app.")
@click.option(
    "--record",
    "record_file",
    type=click.Path(exists=True, path_type=Path),
    help="YAML or JSON file with the sample record's field values.",
)
@click.option(
    "--draft",
    type=click.Path(exists=True, path_type=Path),
    help="A draft flow definition to simulate instead of the published one.",
)
@click.option("--at", "at", type=click.DateTime(), help="Simulated start time (UTC).")
@click.option("--outcome", multiple=True, help="NODE=OUTCOME for a user task (default approved).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.pass_obj
def flow_simulate(
    settings: Settings,
    flow_key: str,
    app: str,
    record_file: Path | None,
    draft: Path | None,
    at: Any,
    outcome: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run FLOW on a sample record without keeping anything: path, tasks, deadlines."""
    from datetime import UTC, datetime

    import yaml

    from engine.flows.runtime_env import environment
    from engine.flows.simulate import simulate_flow
    from engine.installer import open_database

    def read(path: Path | None) -> Any:
        return None if path is None else yaml.safe_load(path.read_text(encoding="utf-8"))

    outcomes = dict(item.split("=", 1) for item in outcome)
    start = at.replace(tzinfo=UTC) if at else datetime.now(UTC)
    db = open_database(settings)
    try:
        report = simulate_flow(
            db=db,
            env=environment(),
            app=app,
            flow=flow_key,
            record=read(record_file),
            at=start,
            draft=read(draft),
            outcomes=outcomes,
        )
    except EngineError as err:
        _fail(err)
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for line in describe_simulation(report):
        click.echo(line)


def describe_simulation(report: dict[str, Any]) -> list[str]:
    """The simulation report as lines for a terminal."""
    lines = [f"status: {report['instance']['status']}"]
    for step in report["path"]:
        detail = {k: v for k, v in step["detail"].items() if k != "type"}
        extra = f" {json.dumps(detail, ensure_ascii=False)}" if detail else ""
        lines.append(f"  {step['at']}  {step['event']:<13} {step['node'] or ''}{extra}")
    for task in report["tasks"]:
        who = ", ".join(str(a["username"] or a["id"]) for a in task["assignees"]) or "nobody"
        due = f", due {task['due_at']}" if task["due_at"] else ""
        lines.append(f"task {task['node']} ({task['kind']}, {task['mode']}): {who}{due}")
    for deadline in report["deadlines"]:
        lines.append(f"{deadline['type']} {deadline['node']} due {deadline['due_at']}")
    for waiting in report["waiting"]:
        lines.append(f"still waiting at {waiting['node']}")
    return lines


def main() -> None:
    cli(prog_name="tangram")


__all__ = ["cli", "main"]

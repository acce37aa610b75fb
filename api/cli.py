"""The `tangram` command line: init, check, import, export, purge, serve."""

from __future__ import annotations

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
        created = initialise(settings=settings)
    click.echo("created user admin" if created else "database is up to date")


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
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the API and the web UI with uvicorn."""
    import uvicorn

    from api.app import create_app
    from engine.installer import open_database

    open_database(settings).dispose()  # an embedded database is ready without a separate init
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port)


def main() -> None:
    cli(prog_name="tangram")


__all__ = ["cli", "main"]

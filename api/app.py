"""The FastAPI application factory: state is built in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.errors import install_error_handlers
from api.routes import (
    admin_jobs,
    audit,
    auth,
    bundles,
    files,
    flows,
    forms,
    health,
    notifications,
    org,
    public,
    record_files,
    record_lists,
    record_pickers,
    record_transfer,
    records,
    report_deliveries,
    reports,
    schemas,
    tasks,
)
from api.security import install_security_handlers, require_actor, require_admin_actor
from engine import __version__
from engine.settings import Settings
from engine.storage.database import create_database_engine
from engine.wiring import build_engines
from web import mount_pages


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = create_database_engine(settings.resolved_database_url())
        # Flows, SLA, audit, relation guards and report caches hear every record write: the
        # same listeners `tangram worker` builds (engine/wiring.py).
        engines = build_engines(app.state.db)
        app.state.registry = engines.registry
        app.state.records = engines.records
        app.state.record_listeners = engines.listeners
        try:
            yield
        finally:
            app.state.db.dispose()

    app = FastAPI(
        title="Tangram",
        version=__version__,
        description="No-code platform API: definitions, bundles, records, flows and reports.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    install_security_handlers(app)
    for module in (health, schemas, auth, org, audit):  # each guards its own routes
        app.include_router(module.router, prefix="/api/v1")
    # Definitions and files: administrators only. Records, lists and transfer: any signed-in
    # user, each route applying the actor's form access (docs/permissions.md).
    admin_only = [Depends(require_admin_actor)]
    signed_in = [Depends(require_actor)]
    for module in (bundles, forms, files):
        app.include_router(module.router, prefix="/api/v1", dependencies=admin_only)
    # order matters: /records/{id} comes last so /records/count and /records/export match first
    for module in (record_transfer, record_lists, records):
        app.include_router(module.router, prefix="/api/v1", dependencies=signed_in)
    app.include_router(public.router, prefix="/api/v1")  # guards its own routes
    app.include_router(record_files.router, prefix="/api/v1", dependencies=signed_in)
    app.include_router(record_pickers.router, prefix="/api/v1", dependencies=signed_in)
    app.include_router(notifications.router, prefix="/api/v1")  # signed-in users, own guard
    app.include_router(admin_jobs.router, prefix="/api/v1")  # administrators, own guard
    app.include_router(report_deliveries.router, prefix="/api/v1")  # administrators, own guard
    app.include_router(reports.router, prefix="/api/v1", dependencies=signed_in)
    app.include_router(flows.router, prefix="/api/v1")  # own guards; hooks check a secret
    app.include_router(tasks.router, prefix="/api/v1")  # signed-in users; attributes: admins
    mount_pages(app)
    return app


__all__ = ["create_app"]

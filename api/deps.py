"""Dependency aliases for routes: settings and the database engine from `app.state`."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from engine.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> sa.Engine:
    db: sa.Engine = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[sa.Engine, Depends(get_db)]

__all__ = ["DatabaseDep", "SettingsDep", "get_db", "get_settings"]

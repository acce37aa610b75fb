"""An administrator's API token for benchmarks that call the HTTP API."""

from __future__ import annotations

import secrets

from engine.identity.accounts import create_user, grant_role
from engine.identity.passwords import PasswordPolicy
from engine.identity.service import load_actor
from engine.identity.tokens import create_token
from engine.storage import UnitOfWork, create_database_engine


def admin_headers(url: str) -> dict[str, str]:
    """Create a throw-away admin in the database at `url`; headers that authenticate as it."""
    engine = create_database_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            name = f"bench_{secrets.token_hex(4)}"
            user = create_user(
                uow=uow, actor=None, username=name, display_name=name, policy=PasswordPolicy()
            )
            grant_role(uow=uow, actor=None, app=None, role="admin", user_id=user.id)
            token = create_token(uow=uow, actor=load_actor(uow=uow, user_id=user.id), name=name)
            uow.commit()
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {token.token}"}

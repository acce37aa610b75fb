"""Three kinds of actors around customers and tickets with files, for the access matrix of
relation pickers and attachment downloads (admin, department agents, an own-records engineer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.storage.uow import UnitOfWork

FORMS = "/api/v1/apps/acc/forms"
BUNDLE = {
    "bundle.yaml": 'key: acc\nname: Access\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n',
    "forms/customer.yaml": """
key: customer
label: Customer
title_field: name
fields:
  - {key: name, type: text, label: Name, required: true}
  - {key: vip_note, type: text, label: VIP note}
""",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
title_field: subject
fields:
  - {key: subject, type: text, label: Subject, required: true}
  - {key: customer, type: relation, form: customer, label: Customer}
  - {key: photos, type: image, multiple: true, label: Photos}
  - {key: contract, type: attachment, label: Contract}
""",
    "roles/agent.yaml": """
key: agent
label: Agent
permissions:
  - {form: ticket, actions: [create, read, update, delete], scope: department}
  - {form: customer, actions: [create, read, update], scope: department}
""",
    "roles/engineer.yaml": """
key: engineer
label: Engineer
permissions:
  - form: ticket
    actions: [create, read, update]
    scope: own
    fields: {contract: hidden}
  - form: customer
    actions: [create, read]
    scope: own
    fields: {vip_note: hidden}
""",
}
PEOPLE = {
    "admin": (None, None),
    "agent": ("support", "agent"),
    "agent2": ("support", "agent"),
    "outsider": ("sales", "agent"),
    "engineer": (None, "engineer"),
}


@dataclass
class World:
    api: TestClient
    tokens: dict[str, str]
    users: dict[str, int]
    ids: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def call(self, who: str, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.api.request(method, url, headers=headers, **kwargs)

    def create(self, who: str, form: str, data: dict[str, Any]) -> int:
        response = self.call(who, "POST", f"{FORMS}/{form}/records", json=data)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def upload(self, name: str, content: bytes) -> dict[str, Any]:
        files = {"file": (name, content, "application/octet-stream")}
        response = self.call("admin", "POST", "/api/v1/files", files=files)
        assert response.status_code == 201, response.text
        return dict(response.json())


def build_world(
    api: TestClient, engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], folder: Path
) -> World:
    """Install the bundle and make the people, each with an API token."""
    from engine.bundles import load_bundle
    from engine.identity.accounts import create_department, create_user, grant_role, set_membership
    from engine.identity.passwords import PasswordPolicy
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token
    from engine.installer import import_bundle

    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))
    users: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with uow_factory() as uow:
        departments = {
            key: create_department(uow=uow, actor=None, key=key, name=key.title()).id
            for key in ("support", "sales")
        }
        for name, (department, role) in PEOPLE.items():
            user = create_user(
                uow=uow, actor=None, username=name, display_name=name, policy=PasswordPolicy()
            )
            users[name] = user.id
            if department is not None:
                set_membership(
                    uow=uow,
                    actor=None,
                    department_id=departments[department],
                    user_id=user.id,
                    member=True,
                )
            app = None if role is None else "acc"
            grant_role(uow=uow, actor=None, app=app, role=role or "admin", user_id=user.id)
        for name, user_id in users.items():
            actor = load_actor(uow=uow, user_id=user_id)
            tokens[name] = create_token(uow=uow, actor=actor, name="matrix").token
        uow.commit()
    return World(api, tokens, users)


__all__ = ["BUNDLE", "FORMS", "PEOPLE", "World", "build_world"]

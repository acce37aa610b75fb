"""The actor: who is asking, with departments and roles resolved once per request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ADMIN_ROLE = "admin"
GLOBAL = ""  # the app key under which global roles (roles.app IS NULL) are listed

_EMPTY: Mapping[str, frozenset[str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in user as the engine sees it.

    `department_ids` are the departments the user belongs to; `ancestor_department_ids` those
    and every department above them (grants to a department reach its sub-departments);
    `subtree_department_ids` those and every department below them ("my department and below"
    scopes). `roles` maps an app key to the role keys granted in it; global roles sit under "".
    `is_admin` (the global `admin` role) bypasses every scope and field mask.
    """

    user_id: int
    username: str
    display_name: str = ""
    is_admin: bool = False
    department_ids: frozenset[int] = frozenset()
    ancestor_department_ids: frozenset[int] = frozenset()
    subtree_department_ids: frozenset[int] = frozenset()
    roles: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)

    def role_keys(self, app: str) -> frozenset[str]:
        """Keys of the roles the actor holds in `app` (global roles not included)."""
        return self.roles.get(app, frozenset())

    def has_role(self, app: str, key: str) -> bool:
        return key in self.role_keys(app)


__all__ = ["ADMIN_ROLE", "GLOBAL", "Actor"]

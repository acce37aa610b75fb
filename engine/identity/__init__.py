"""Identity and permissions: role definitions, the actor, sign-in errors and password hashing.

Services that touch the database live in their modules (`accounts`, `sessions`, `tokens`,
`service`) and are imported from there, so importing the package stays free of storage.
"""

from engine.identity.actor import ADMIN_ROLE, Actor
from engine.identity.errors import NotAuthenticated, TooManyAttempts
from engine.identity.passwords import PasswordPolicy
from engine.identity.spec import FormPermission, RoleSpec

__all__ = [
    "ADMIN_ROLE",
    "Actor",
    "FormPermission",
    "NotAuthenticated",
    "PasswordPolicy",
    "RoleSpec",
    "TooManyAttempts",
]

"""Identity and permissions: role definitions."""

from engine.identity.spec import FormPermission, RoleSpec

__all__ = ["FormPermission", "RoleSpec"]
